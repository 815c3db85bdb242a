'use strict';
// answer.js — a minimal real ARI application (npm ari-client 2.2.0) used by
// tapedeck's end-to-end tests. It is written the way typical user code is
// written (see the seed skeleton): connect, listen for StasisStart, answer.
//
// Environment:
//   ARI_URL              http://127.0.0.1:PORT (required; ari-client only uses scheme+host)
//   ARI_USER / ARI_PASS  credentials (default asterisk / asterisk)
//   ARI_APP              Stasis application name (default "tapedeck-test")
//   EXPECT_DIGITS        hang up once this many DTMF digits were received (its length counts)
//   HANGUP_AFTER_ANSWER  "1": hang up right after the answer succeeded
//   TIMEOUT_MS           give up (exit 1) after this long without StasisEnd (default 20000)
//
// Output: one JSON object per line on stdout:
//   {"type":"READY"}                                     client.start(app) resolved
//   {"type":<event type>,"args":..,"digit":..,"channel":<id>}   every ARI event received
//   {"type":"ANSWERED","channel":<id>}                   channel.answer() succeeded
//   {"type":"DIGITS","digits":"12#","channel":<id>}      EXPECT_DIGITS reached
//   {"type":"HUNGUP","channel":<id>}                     channel.hangup() succeeded
//   {"type":"ERROR","message":...}                       then exit 1
// Exit status: 0 after StasisEnd of the first channel that entered the app.

const ari = require('ari-client');

const url = process.env.ARI_URL;
const user = process.env.ARI_USER || 'asterisk';
const pass = process.env.ARI_PASS || 'asterisk';
const app = process.env.ARI_APP || 'tapedeck-test';
const expectDigits = process.env.EXPECT_DIGITS || '';
const hangupAfterAnswer = process.env.HANGUP_AFTER_ANSWER === '1';
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '20000', 10) || 20000;

let exiting = false;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function finish(code) {
  if (exiting) {
    return;
  }
  exiting = true;
  // Linux pipes are written synchronously, but wait for the flush anyway.
  process.stdout.write('', () => process.exit(code));
}

function fail(err) {
  if (exiting) {
    return;
  }
  let message;
  if (err instanceof Error) {
    message = err.message || String(err);
  } else if (typeof err === 'string') {
    message = err;
  } else {
    try {
      message = JSON.stringify(err);
    } catch (e) {
      message = String(err);
    }
  }
  emit({ type: 'ERROR', message: message });
  finish(1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

const timer = setTimeout(() => {
  fail('timeout after ' + timeoutMs + ' ms without StasisEnd');
}, timeoutMs);
timer.unref();

if (!url) {
  fail('ARI_URL is not set');
} else {
  let ourChannel = null; // id of the first channel that entered the app
  let digits = '';
  let hangingUp = false;

  const hangup = (channel) => {
    if (hangingUp) {
      return;
    }
    hangingUp = true;
    channel.hangup((err) => {
      if (err) {
        fail(err);
        return;
      }
      emit({ type: 'HUNGUP', channel: channel.id });
    });
  };

  ari.connect(url, user, pass, (err, client) => {
    if (err) {
      fail(err);
      return;
    }

    client.on('*', (event, instances) => {
      let channelId;
      if (event.channel && event.channel.id) {
        channelId = event.channel.id;
      } else if (instances && instances.id && event.type.startsWith('Channel')) {
        channelId = instances.id;
      }
      const line = { type: event.type };
      if (event.args !== undefined) {
        line.args = event.args;
      }
      if (event.digit !== undefined) {
        line.digit = event.digit;
      }
      if (channelId !== undefined) {
        line.channel = channelId;
      }
      emit(line);
      // '*' is emitted before the per-type listeners: exit here so the
      // StasisEnd line is always printed first.
      if (event.type === 'StasisEnd' && ourChannel !== null && channelId === ourChannel) {
        finish(0);
      }
    });

    client.on('StasisStart', (event, channel) => {
      if (ourChannel !== null) {
        return;
      }
      ourChannel = channel.id;
      channel.answer((err) => {
        if (err) {
          fail(err);
          return;
        }
        emit({ type: 'ANSWERED', channel: channel.id });
        if (hangupAfterAnswer) {
          hangup(channel);
        }
      });
    });

    client.on('ChannelDtmfReceived', (event, channel) => {
      if (!channel || channel.id !== ourChannel || expectDigits === '') {
        return;
      }
      digits += event.digit;
      if (digits.length === expectDigits.length) {
        emit({ type: 'DIGITS', digits: digits, channel: channel.id });
        hangup(channel);
      }
    });

    client.on('WebSocketMaxRetries', (err) => {
      fail(err || 'WebSocketMaxRetries');
    });

    client.start(app, (err) => {
      if (err) {
        fail(err);
        return;
      }
      emit({ type: 'READY' });
    });
  });
}
