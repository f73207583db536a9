// FastAGI peer on ding-dong: the screening job of bench/compare.sh (issue 15).
//   node ding-dong-peer.js HOST:PORT BLACKLIST.csv
// Per call: the AGI environment (ding-dong's 'variables' event), the lookup, `EXEC MSet` of
// the five variables, and for a blocked caller `EXEC Busy 5` + `EXEC Hangup 17`, each
// waiting for its reply (ding-dong's promises); then context.end() closes our side.
'use strict';
const AGIServer = require('ding-dong');
const { load, decide, hostPort } = require('./screen');

const [host, port] = hostPort(process.argv[2]);
const table = load(process.argv[3]);

const handler = (context) => {
  context.on('error', () => {});
  context.onEvent('variables')
    .then(async (vars) => {
      const [blocked, pairs] = decide(table, vars.agi_callerid || '');
      const data = pairs.map(([n, v]) => `CALLGUARD_${n}=${v}`).join(',');
      await context.exec('MSet', `"${data}"`);
      if (blocked) {
        await context.exec('Busy', '5');
        await context.exec('Hangup', '17');
      }
    })
    .catch(() => {})
    .then(() => context.end());
};

const server = new AGIServer(handler).start(port, host);
server.on('listening', () => console.error(`ding-dong listening ${host}:${port}`));
