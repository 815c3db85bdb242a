'use strict';
// bargein.js — barge-in, as ARI IVR apps do it with npm ari-client: answer,
// turn on TALK_DETECT, play a long prompt, stop the prompt as soon as the
// caller starts talking, and hang up when the caller has finished.
//
// Environment:
//   ARI_URL, ARI_USER / ARI_PASS, ARI_APP   as in answer.js
//   TALK_DETECT    the value of TALK_DETECT(set) (default "500")
//   TIMEOUT_MS     give up after this long (default 30000)
//
// Output, one JSON object per line: READY; PROMPT; ChannelTalkingStarted;
// BARGED (the prompt stopped); ChannelTalkingFinished {duration};
// PlaybackFinished {state}; exit 0 after StasisEnd.

const ari = require('ari-client');

const app = process.env.ARI_APP || 'bargein';
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
    client.on('StasisStart', async (event, channel) => {
      try {
        await channel.answer();
        await channel.setChannelVar({ variable: 'TALK_DETECT(set)', value: process.env.TALK_DETECT || '500' });
        const prompt = client.Playback();
        prompt.once('PlaybackFinished', (ev, playback) => emit({ type: 'PlaybackFinished', state: playback.state }));
        channel.once('ChannelTalkingStarted', async () => {
          emit({ type: 'ChannelTalkingStarted' });
          await prompt.stop();
          emit({ type: 'BARGED' });
        });
        channel.once('ChannelTalkingFinished', async (ev) => {
          emit({ type: 'ChannelTalkingFinished', duration: ev.duration });
          await channel.hangup();
        });
        channel.once('StasisEnd', () => finish(0));
        await channel.play({ media: 'tone:!350+440' }, prompt);
        emit({ type: 'PROMPT' });
      } catch (err) {
        fail(err);
      }
    });
    return client.start(app).then(() => emit({ type: 'READY' }));
  })
  .catch(fail);
