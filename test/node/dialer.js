'use strict';
// dialer.js — an outbound dialer written the way ari-client users write one:
// start the application, originate a channel into it, follow the channel's
// events until it is destroyed (answered or not), hang up once it entered
// the application.
//
// Environment:
//   ARI_URL, ARI_USER / ARI_PASS, ARI_APP   as in answer.js
//   ENDPOINT       the endpoint to originate to (required)
//   DIAL_TIMEOUT   originate timeout in seconds (default 30)
//   MODE           "originate" (POST /channels, default) or "create"
//                  (POST /channels/create, then POST /channels/{id}/dial)
//   TIMEOUT_MS     give up after this long without ChannelDestroyed
//
// Output, one JSON object per line:
//   {"type":"READY"} after client.start, {"type":"ORIGINATED","id":..}
//   every event about the dialed channel:
//   {"type":..,"state":..,"dialstatus":..,"cause":..,"cause_txt":..,"args":..,
//    "dialplan_app":..,"dialplan_app_data":..}
// Exit 0 after the dialed channel's ChannelDestroyed.

const ari = require('ari-client');

const url = process.env.ARI_URL;
const app = process.env.ARI_APP || 'dialer';
const endpoint = process.env.ENDPOINT;
const mode = process.env.MODE || 'originate';
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
setTimeout(() => fail('timeout without ChannelDestroyed'), timeoutMs).unref();

ari.connect(url, process.env.ARI_USER || 'asterisk', process.env.ARI_PASS || 'asterisk')
  .then((client) => {
    const outgoing = client.Channel();
    const report = (event, extra) => {
      const line = Object.assign({ type: event.type }, extra || {});
      const ch = event.channel || event.peer;
      if (ch) {
        line.state = ch.state;
      }
      if (event.dialstatus !== undefined) {
        line.dialstatus = event.dialstatus;
      }
      if (event.cause !== undefined) {
        line.cause = event.cause;
      }
      if (event.cause_txt !== undefined) {
        line.cause_txt = event.cause_txt;
      }
      if (event.args !== undefined) {
        line.args = event.args;
      }
      if (event.dialplan_app !== undefined) {
        line.dialplan_app = event.dialplan_app;
        line.dialplan_app_data = event.dialplan_app_data;
      }
      emit(line);
    };
    ['ChannelCreated', 'ChannelDialplan', 'ChannelStateChange', 'ChannelHangupRequest', 'StasisEnd', 'ChannelDestroyed'].forEach((type) => {
      outgoing.on(type, (event) => {
        report(event);
        if (type === 'ChannelDestroyed') {
          finish(0);
        }
      });
    });
    client.on('Dial', (event) => {
      if (event.peer && event.peer.id === outgoing.id) {
        report(event);
      }
    });
    outgoing.on('StasisStart', (event, channel) => {
      report(event);
      if (channel.state === 'Up') {
        channel.hangup().catch(fail);
      }
    });
    return client.start(app).then(() => {
      emit({ type: 'READY' });
      const timeout = parseInt(process.env.DIAL_TIMEOUT || '30', 10);
      if (mode === 'create') {
        return outgoing.create({ endpoint: endpoint, app: app, appArgs: 'dialed' })
          .then(() => emit({ type: 'CREATED', id: outgoing.id }))
          .then(() => outgoing.dial({ timeout: timeout }));
      }
      return outgoing.originate({ endpoint: endpoint, app: app, appArgs: 'dialed', timeout: timeout })
        .then((ch) => emit({ type: 'ORIGINATED', id: ch.id, state: ch.state }));
    });
  })
  .catch(fail);
