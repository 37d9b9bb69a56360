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
