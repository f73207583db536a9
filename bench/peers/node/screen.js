// The screening job every peer of bench/compare.sh does (issue 15), in plain Node: the
// blacklist CSV that bench/compare.sh writes (rule_name,pattern,...) in a Map, and the same
// five variables callguard sets, in the same order.
'use strict';
const fs = require('fs');

function load(path) {
  const table = new Map();
  const lines = fs.readFileSync(path, 'utf8').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i].split(',');
    if (f.length >= 2) table.set(f[1], f[0]);
  }
  console.error(`loaded ${table.size} numbers from ${path}`);
  return table;
}

function decide(table, caller) {
  const rule = table.get(caller);
  if (rule === undefined) {
    return [false, [['VERDICT', 'allow'], ['ACTION', 'pass'], ['RULE', ''], ['LIST', 'default'],
      ['REASON', 'no rule matched on trunk support']]];
  }
  return [true, [['VERDICT', 'block'], ['ACTION', 'reject'], ['RULE', rule], ['LIST', 'blacklist'],
    ['REASON', `blacklist rule ${rule} exact ${caller} on trunk support`]]];
}

function hostPort(s) {
  const i = s.lastIndexOf(':');
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

module.exports = { load, decide, hostPort };
