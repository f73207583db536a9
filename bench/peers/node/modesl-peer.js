// Outbound-ESL peer on modesl: the screening job of bench/compare.sh (issue 15).
//   node modesl-peer.js HOST:PORT BLACKLIST.csv
// Per call: modesl's own `connect` and `event plain BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE`,
// `myevents` (Server option), `linger 5`, one `multiset` of the five variables waiting for its
// CHANNEL_EXECUTE_COMPLETE, and for a blocked caller `respond 486 Busy Here`; then `exit`.
'use strict';
const esl = require('modesl');
const { load, decide, hostPort } = require('./screen');

const [host, port] = hostPort(process.argv[2]);
const table = load(process.argv[3]);

const server = new esl.Server({ host, port, myevents: true }, () => {
  console.error(`modesl listening ${host}:${port}`);
});
server.server.maxConnections = 100000;
// A connection that closes at once (compare.sh's port probe) makes modesl write to a closed
// socket and throw outside any handler: keep serving the other calls.
server.on('connection::open', (conn) => conn.on('error', () => {}));
process.on('uncaughtException', () => {});

server.on('connection::ready', (conn) => {
  conn.on('error', () => {});
  conn.setEventLock(true); // as callguard sends its executes
  const caller = conn.getInfo().getHeader('Caller-Caller-ID-Number') || '';
  const [blocked, pairs] = decide(table, caller);
  const arg = '^^|' + pairs.map(([n, v]) => `callguard_${n.toLowerCase()}=${v}`).join('|');
  conn.sendRecv('linger 5', () => {
    conn.execute('multiset', arg, () => {
      const done = () => conn.disconnect();
      if (!blocked) return done();
      // respond 486 ends the channel; its completion event still comes.
      conn.execute('respond', '486 Busy Here', done);
    });
  });
});
