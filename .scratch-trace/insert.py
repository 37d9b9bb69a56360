import re, sys
def insert_ftrace(path, items, import_line, after_import):
    s = open(path).read()
    lines = s.split('\n')
    for name, kexpr in items:
        pat = re.compile(r'^(export )?(async )?function ' + re.escape(name) + r'\(')
        idx = [i for i, l in enumerate(lines) if pat.match(l)]
        if len(idx) != 1:
            sys.exit(f"{path}: {name}: {len(idx)} matches")
        i = idx[0]
        # signature may span lines: find the line ending with '{'
        j = i
        while not lines[j].rstrip().endswith('{'):
            j += 1
        if 'ftrace(' in lines[j+1]:
            continue
        lines.insert(j + 1, f'  using _ = ftrace({kexpr}, "{name}");')
    s = '\n'.join(lines)
    if import_line not in s:
        if s.count(after_import) != 1:
            sys.exit(f"{path}: import anchor not unique")
        s = s.replace(after_import, after_import + '\n' + import_line)
    open(path, 'w').write(s)

def import_end(path):
    lines = open(path).read().split('\n')
    last = None
    in_imports = False
    for i, l in enumerate(lines):
        if l.startswith('import '):
            in_imports = True
        if in_imports and (l.startswith('export ') or l.startswith('function ') or l.startswith('const ') or l.startswith('class ') or l.startswith('async ') or l.startswith('/**') or l.startswith('@')):
            break
        if in_imports and l.rstrip().endswith('";'):
            last = l
    return last

def instrument(path, items, depth):
    imp = 'import { ftrace } from "' + '../' * depth + 'include/linux/ftrace.ts";'
    insert_ftrace(path, items, imp, import_end(path))
