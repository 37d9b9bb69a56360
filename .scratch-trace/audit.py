# Lists `return f(...)` (no await) inside async functions that open an ftrace scope.
import re, sys
for path in sys.argv[1:]:
    lines = open(path).read().split('\n')
    i = 0
    while i < len(lines):
        m = re.match(r'^\s*(export )?(private )?async (function )?(\w+)\(', lines[i])
        if m:
            # find body extent by brace counting from the line with '{'
            depth = 0; start = i; body = []; started = False
            j = i
            while j < len(lines):
                depth += lines[j].count('{') - lines[j].count('}')
                if '{' in lines[j]: started = True
                body.append((j, lines[j]))
                if started and depth <= 0: break
                j += 1
            if any('using _ = ftrace' in l for _, l in body):
                for n, l in body:
                    if re.search(r'\breturn (?!await\b)[\w.!]+\(', l) :
                        print(f"{path}:{n+1}: {l.strip()}")
            i = j
        i += 1
