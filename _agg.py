from collections import Counter
own=Counter(); tot=Counter(); threads=Counter()
for line in open('/tmp/prof.txt'):
    stack, _, n = line.rstrip().rpartition(' ')
    n=int(n); frames=stack.split(';')
    threads[frames[0]]+=n
    own[frames[-1]]+=n
    for f in set(frames): tot[f]+=n
print(threads.most_common(6))
print("--- own"); [print(n, f[:150]) for f,n in own.most_common(30)]
print("--- total"); [print(n, f[:150]) for f,n in tot.most_common(50)[8:]]
