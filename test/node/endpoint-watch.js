'use strict';
// endpoint-watch.js — two real ARI applications (npm ari-client 2.2.0) that
// watch calls they do not control, the way monitoring and presence apps
// do: one subscribes to an endpoint (a user's phone) and one to every
// event (subscribeAll). They print what they hear; the test checks that
// the endpoint's channels' events reach the first, and that neither gets
// StasisStart/StasisEnd of channels that are in another application.
//
// Environment:
//   ARI_URL              http://127.0.0.1:PORT (required)
//   ARI_USER / ARI_PASS  credentials (default asterisk / asterisk)
//   WATCH_APP            the endpoint watcher's name (default "watcher")
//   WATCH_ENDPOINT       its event source, e.g. endpoint:PJSIP/alice (required)
//   SPY_APP              the subscribeAll app's name (default "spy")
//   TIMEOUT_MS           exit 1 after this long (default 60000)
//
// Output: one JSON object per line on stdout:
//   {"type":"SUBSCRIBED","endpoint_ids":[...]}     applications.subscribe answered
//   {"type":"READY"}                               both apps started and subscribed
//   {"app":<name>,"type":<event>,"channel":<id>}   every event either app receives
//     (an endpoint event also with "endpoint" tech/resource, "state" and
//     "channel_ids")
//   {"type":"ERROR","message":...}                 then exit 1

const ari = require('ari-client');

const url = process.env.ARI_URL;
const user = process.env.ARI_USER || 'asterisk';
const pass = process.env.ARI_PASS || 'asterisk';
const watchApp = process.env.WATCH_APP || 'watcher';
const watchEndpoint = process.env.WATCH_ENDPOINT;
const spyApp = process.env.SPY_APP || 'spy';
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '60000', 10) || 60000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function fail(err) {
  emit({ type: 'ERROR', message: err instanceof Error ? err.message : String(err) });
  process.stdout.write('', () => process.exit(1));
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);
setTimeout(() => fail('timeout after ' + timeoutMs + ' ms'), timeoutMs).unref();

function listen(client, app) {
  client.on('*', (event) => {
    const line = { app: app, type: event.type };
    if (event.application !== app) {
      line.application = event.application;
    }
    if (event.channel && event.channel.id) {
      line.channel = event.channel.id;
      line.name = event.channel.name;
    }
    if (event.endpoint) {
      line.endpoint = event.endpoint.technology + '/' + event.endpoint.resource;
      line.state = event.endpoint.state;
      line.channel_ids = event.endpoint.channel_ids;
    }
    emit(line);
  });
}

async function main() {
  if (!url || !watchEndpoint) {
    throw new Error('ARI_URL and WATCH_ENDPOINT must be set');
  }
  const watcher = await ari.connect(url, user, pass);
  listen(watcher, watchApp);
  await watcher.start(watchApp);
  const app = await watcher.applications.subscribe({ applicationName: watchApp, eventSource: watchEndpoint });
  emit({ type: 'SUBSCRIBED', endpoint_ids: app.endpoint_ids });

  const spy = await ari.connect(url, user, pass);
  listen(spy, spyApp);
  await spy.start(spyApp, true);
  emit({ type: 'READY' });
}

main().catch(fail);
