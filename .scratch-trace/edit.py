import sys
def edit(path, pairs):
    s = open(path).read()
    for old, new in pairs:
        n = s.count(old)
        if n != 1:
            sys.exit(f"{path}: pattern found {n} times:\n{old}")
        s = s.replace(old, new)
    open(path, 'w').write(s)
