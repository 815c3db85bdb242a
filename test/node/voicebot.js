'use strict';
// voicebot.js — the usual shape of an ARI voice-bot / transcription app
// (npm ari-client): answer the caller, create a mixing bridge, start an
// external media channel that streams the call to the bot's RTP address,
// and bridge the two. The caller then hears whatever the bot sends back.
//
// Environment:
//   ARI_URL, ARI_USER / ARI_PASS, ARI_APP   as in answer.js
//   EXTERNAL_HOST  host:port of the bot's RTP socket, AudioSocket server or
//                  websocket client id (required but for a websocket server)
//   FORMAT         external media format (default ulaw)
//   ENCAPSULATION, TRANSPORT, CONNECTION_TYPE, DATA   externalMedia's
//                  parameters when set (audiosocket/tcp with DATA the UUID;
//                  none/websocket with client or server)
//   TIMEOUT_MS     give up after this long (default 30000)
//
// Output, one JSON object per line: READY; EXTERNAL {id, name,
// channelvars}; BRIDGED; CALLER_LEFT, then exit 0 once the caller hung up
// and the app hung up the external media channel.

const ari = require('ari-client');

const app = process.env.ARI_APP || 'voicebot';
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
    const calls = {}; // caller id -> external media channel

    client.on('StasisStart', async (event, channel) => {
      if (/^(UnicastRTP|AudioSocket|WebSocket)\//.test(channel.name)) {
        return; // our external media channel entering the app
      }
      try {
        await channel.answer();
        const bridge = client.Bridge();
        await bridge.create({ type: 'mixing' });
        const params = { app: app, format: process.env.FORMAT || 'ulaw' };
        for (const [k, env] of [['external_host', 'EXTERNAL_HOST'], ['encapsulation', 'ENCAPSULATION'],
          ['transport', 'TRANSPORT'], ['connection_type', 'CONNECTION_TYPE'], ['data', 'DATA']]) {
          if (process.env[env]) {
            params[k] = process.env[env];
          }
        }
        const external = await client.channels.externalMedia(params);
        calls[channel.id] = external;
        emit({ type: 'EXTERNAL', id: external.id, name: external.name, channelvars: external.channelvars });
        await bridge.addChannel({ channel: [channel.id, external.id] });
        emit({ type: 'BRIDGED' });
        channel.once('StasisEnd', async () => {
          emit({ type: 'CALLER_LEFT' });
          await external.hangup();
          await bridge.destroy();
          finish(0);
        });
      } catch (err) {
        fail(err);
      }
    });

    return client.start(app).then(() => emit({ type: 'READY' }));
  })
  .catch(fail);
