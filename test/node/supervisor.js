'use strict';
// supervisor.js — a call-centre application with a supervisor's recorder,
// written the way ari-client users write one: a caller enters the app, is
// answered and bridged with an agent the app originates; then the app
// snoops the caller's channel twice, spying on what the caller says ("in")
// and on what the caller hears ("out", the agent), and records each snoop
// channel into its own file.
//
// Environment:
//   ARI_URL, ARI_USER / ARI_PASS, ARI_APP   as in answer.js
//   AGENT          the agent's endpoint (required)
//   TIMEOUT_MS     give up after this long (default 30000)
//
// Output, one JSON object per line: READY; BRIDGED {caller, agent};
// SNOOPING {role, id}; RecordingStarted / RecordingFinished {name};
// DONE after both recordings finished.

const ari = require('ari-client');

const app = process.env.ARI_APP || 'callcentre';
const agentEndpoint = process.env.AGENT;
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '30000', 10) || 30000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
function finish(code) {
  process.stdout.write('', () => process.exit(code));
}
function fail(err) {
  emit({ type: 'ERROR', message: (err && err.message) || String(err) });
  finish(1);
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
setTimeout(() => fail('timeout'), timeoutMs).unref();

ari.connect(process.env.ARI_URL, process.env.ARI_USER || 'asterisk', process.env.ARI_PASS || 'asterisk')
  .then((client) => {
    let caller = null;
    let finished = 0;

    const superviseCall = async (agent) => {
      const bridge = client.Bridge();
      await bridge.create({ type: 'mixing' });
      await bridge.addChannel({ channel: [caller.id, agent.id] });
      emit({ type: 'BRIDGED', caller: caller.id, agent: agent.id });
      // What the caller says, and what the caller hears (the agent).
      await caller.snoopChannel({ spy: 'in', app: app, appArgs: 'snoop,caller' });
      await caller.snoopChannel({ spy: 'out', app: app, appArgs: 'snoop,agent' });
    };

    client.on('StasisStart', (event, channel) => {
      const args = event.args || [];
      if (args[0] === 'snoop') {
        emit({ type: 'SNOOPING', role: args[1], id: channel.id, name: channel.name });
        channel.record({ name: 'supervisor-' + args[1], format: 'wav', ifExists: 'overwrite' })
          .catch(fail);
        return;
      }
      if (args[0] === 'agent') {
        superviseCall(channel).catch(fail);
        return;
      }
      caller = channel;
      channel.answer()
        .then(() => client.Channel().originate({ endpoint: agentEndpoint, app: app, appArgs: 'agent' }))
        .catch(fail);
    });

    client.on('StasisEnd', (event, channel) => {
      if (caller !== null && channel.id === caller.id) {
        emit({ type: 'CALLER_LEFT' });
      }
    });

    client.on('RecordingStarted', (event, recording) => {
      emit({ type: 'RecordingStarted', name: recording.name });
    });
    client.on('RecordingFinished', (event, recording) => {
      emit({ type: 'RecordingFinished', name: recording.name, duration: recording.duration });
      if (++finished === 2) {
        emit({ type: 'DONE' });
        finish(0);
      }
    });

    return client.start(app).then(() => emit({ type: 'READY' }));
  })
  .catch(fail);
