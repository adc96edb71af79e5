#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Summary of a V8 .heapsnapshot: self size by node type and constructor name, and how much of the
# string space is large strings (module sources) versus small ones (cached objects).
# Usage: python3 bench/experiments/heap-summary.py FILE.heapsnapshot
import json, sys, collections
d = json.load(open(sys.argv[1]))
m = d['snapshot']['meta']; nf = m['node_fields']; types = m['node_types'][0]; n = len(nf)
nodes = d['nodes']; strings = d['strings']
it, iname, isz = nf.index('type'), nf.index('name'), nf.index('self_size')
agg = collections.Counter(); cnt = collections.Counter(); total = 0
for i in range(0, len(nodes), n):
    t = types[nodes[i+it]]; sz = nodes[i+isz]; total += sz
    name = strings[nodes[i+iname]] if t in ('object', 'closure', 'native', 'hidden') else ''
    key = f"{t}:{name[:40]}"
    agg[key] += sz; cnt[key] += 1
print('total MB', round(total/1048576, 1))
for k, v in agg.most_common(18): print(f"{v/1048576:7.1f} MB {cnt[k]:8d}  {k}")
big = 0; bign = 0; small = 0; smalln = 0
ex = []
for i in range(0, len(nodes), n):
    if types[nodes[i+it]] == 'string':
        sz = nodes[i+isz]
        if sz > 1024: big += sz; bign += 1; ex.append((sz, strings[nodes[i+iname]][:60].replace('\n',' ')))
        else: small += sz; smalln += 1
print('strings > 1 KiB:', round(big/1048576,1), 'MB in', bign, '; smaller:', round(small/1048576,1), 'MB in', smalln)
ex.sort(reverse=True)
for e in ex[:5]: print(e)
