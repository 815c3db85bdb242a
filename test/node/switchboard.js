'use strict';
// switchboard.js — a switchboard written the way ari-client users write one.
// A caller arrives in "front": it is answered and put on music on hold for a
// while, then handed to "back" (move); "back" sends it back to the dialplan
// (continueInDialplan) at an extension whose route is Stasis(front,continued);
// "front" then bridges it and transfers it away (redirect: SIP REFER for an
// answered call). Before the move to "back", "front" tries to move the
// caller to "nowhere", which is not registered: the request succeeds and
// "front" is sent ApplicationMoveFailed, keeping the caller. One client
// serves both applications.
//
// Environment:
//   ARI_URL, ARI_USER / ARI_PASS   as in answer.js
//   MOH_CLASS      mohClass of startMoh (empty: the default class)
//   MOH_MS         how long the caller hears music (default 1500)
//   CONT_CONTEXT, CONT_EXTEN   where "back" continues in the dialplan
//   REDIRECT_ENDPOINT          where "front" redirects the caller
//   TIMEOUT_MS     give up after this long (default 60000)
//
// Output, one JSON object per line:
//   {"type":"READY"} after client.start
//   {"type":"ANSWERED"|"MOH_STARTED"|"MOH_STOPPED"|"MOVE_NOWHERE"|"MOVED"|"CONTINUED"|"BRIDGED"|"REDIRECTED"}
//   {"type":"ApplicationMoveFailed","application":..,"destination":..,"args":..}
//   every event about the caller's channel:
//   {"type":..,"application":..,"args":..,"context":..,"exten":..,"priority":..,"cause":..}
// Exit 0 after the caller's ChannelDestroyed, once the REST requests the app
// made have answered (an event may arrive before the answer to the request
// that caused it).

const ari = require('ari-client');

const url = process.env.ARI_URL;
const mohClass = process.env.MOH_CLASS || '';
const mohMs = parseInt(process.env.MOH_MS || '1500', 10);
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '60000', 10) || 60000;

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

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

ari.connect(url, process.env.ARI_USER || 'asterisk', process.env.ARI_PASS || 'asterisk')
  .then((client) => {
    let caller = null;
    // Every chain of REST requests, so that the app reports all its steps
    // before it exits.
    const pending = [];
    const track = (p) => {
      pending.push(p.catch(fail));
    };
    let moveFailed = null;
    const moveFailedSeen = new Promise((resolve) => {
      moveFailed = resolve;
    });
    client.on('ApplicationMoveFailed', (event) => {
      emit({ type: event.type, application: event.application, destination: event.destination, args: event.args });
      moveFailed();
    });
    const report = (event) => {
      const line = { type: event.type, application: event.application };
      if (event.args !== undefined) {
        line.args = event.args;
      }
      if (event.channel && event.channel.dialplan) {
        line.context = event.channel.dialplan.context;
        line.exten = event.channel.dialplan.exten;
        line.priority = event.channel.dialplan.priority;
      }
      if (event.cause !== undefined) {
        line.cause = event.cause;
      }
      emit(line);
    };
    ['StasisEnd', 'ChannelEnteredBridge', 'ChannelLeftBridge', 'ChannelDestroyed'].forEach((type) => {
      client.on(type, (event) => {
        if (!caller || !event.channel || event.channel.id !== caller) {
          return;
        }
        report(event);
        if (type === 'ChannelDestroyed') {
          Promise.all(pending).then(() => finish(0));
        }
      });
    });

    client.on('StasisStart', (event, channel) => {
      caller = channel.id;
      report(event);
      if (event.application === 'back') {
        track(channel.continueInDialplan({ context: process.env.CONT_CONTEXT, extension: process.env.CONT_EXTEN })
          .then(() => emit({ type: 'CONTINUED' })));
        return;
      }
      if (event.args[0] === 'continued') {
        const bridge = client.Bridge();
        track(bridge.create({ type: 'mixing' })
          .then(() => bridge.addChannel({ channel: channel.id }))
          .then(() => emit({ type: 'BRIDGED' }))
          .then(() => channel.redirect({ endpoint: process.env.REDIRECT_ENDPOINT }))
          .then(() => emit({ type: 'REDIRECTED' })));
        return;
      }
      const moh = mohClass ? { mohClass: mohClass } : {};
      track(channel.answer()
        .then(() => emit({ type: 'ANSWERED' }))
        .then(() => channel.startMoh(moh))
        .then(() => emit({ type: 'MOH_STARTED' }))
        .then(() => sleep(mohMs))
        .then(() => channel.stopMoh())
        .then(() => emit({ type: 'MOH_STOPPED' }))
        .then(() => channel.move({ app: 'nowhere', appArgs: 'a,b' }))
        .then(() => emit({ type: 'MOVE_NOWHERE' }))
        .then(() => moveFailedSeen)
        .then(() => channel.move({ app: 'back', appArgs: 'moved' }))
        .then(() => emit({ type: 'MOVED' })));
    });

    return client.start(['front', 'back']).then(() => emit({ type: 'READY' }));
  })
  .catch(fail);
