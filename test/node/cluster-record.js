'use strict';
// cluster-record.js — an npm ari-client 2.2.0 application connected to ONE
// tapedeck node that answers and records the first call (or the first
// CALLS calls) entering it, wherever each landed: user code as written for
// one Asterisk.
//
// Environment:
//   ARI_URL            http://127.0.0.1:PORT of the node it connects to (required)
//   ARI_USER / ARI_PASS  credentials (default asterisk / asterisk)
//   ARI_APP            Stasis application name (required)
//   REC_NAME           the recording's name (required); with CALLS > 1 the
//                      n-th call's (from 1) is REC_NAME-n
//   CALLS              how many calls to answer and record (default 1)
//   RECORD_MS          stop the recording this long after RecordingStarted (default 1500)
//   TIMEOUT_MS         give up (exit 1) after this long (default 30000)
//
// Output: one JSON object per line on stdout:
//   {"type":"READY"}
//   {"type":<ARI event type>,"channel":<id>,"asterisk_id":..,"recording":{name,duration,state}}
//   {"type":"ANSWERED","channel":<id>}
//   {"type":"RECORDING","name":..}       channel.record() resolved
//   {"type":"STOPPED","name":..}         liveRecording.stop() resolved
//   {"type":"HUNGUP","channel":<id>}     channel.hangup() resolved
//   {"type":"ERROR","message":...}       then exit 1
// Exit status: 0 after the StasisEnd of its channels.

const ari = require('ari-client');

const url = process.env.ARI_URL;
const user = process.env.ARI_USER || 'asterisk';
const pass = process.env.ARI_PASS || 'asterisk';
const app = process.env.ARI_APP;
const recName = process.env.REC_NAME;
const recordMs = parseInt(process.env.RECORD_MS || '1500', 10) || 1500;
const timeoutMs = parseInt(process.env.TIMEOUT_MS || '30000', 10) || 30000;
const calls = parseInt(process.env.CALLS || '1', 10) || 1;

let exiting = false;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function finish(code) {
  if (exiting) {
    return;
  }
  exiting = true;
  process.stdout.write('', () => process.exit(code));
}

function fail(err) {
  let message = err instanceof Error ? (err.message || String(err)) : String(err);
  if (typeof err === 'object' && !(err instanceof Error)) {
    try {
      message = JSON.stringify(err);
    } catch (e) {
      // keep String(err)
    }
  }
  emit({ type: 'ERROR', message: message });
  finish(1);
}

process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

setTimeout(() => fail('timeout after ' + timeoutMs + ' ms'), timeoutMs).unref();

if (!url || !app || !recName) {
  fail('ARI_URL, ARI_APP and REC_NAME are required');
} else {
  const ours = new Set(); // the channels it took
  let ended = 0;

  ari.connect(url, user, pass).then((client) => {
    client.on('*', (event) => {
      const line = { type: event.type, asterisk_id: event.asterisk_id };
      if (event.channel && event.channel.id) {
        line.channel = event.channel.id;
      }
      if (event.recording) {
        line.recording = { name: event.recording.name, duration: event.recording.duration, state: event.recording.state };
      }
      emit(line);
      if (event.type === 'StasisEnd' && ours.has(line.channel)) {
        ended++;
        if (ended === calls) {
          finish(0);
        }
      }
    });

    client.on('StasisStart', (event, channel) => {
      if (ours.size >= calls) {
        return;
      }
      ours.add(channel.id);
      const name = calls > 1 ? recName + '-' + ours.size : recName;
      const recording = client.LiveRecording(name);
      recording.once('RecordingStarted', () => {
        setTimeout(() => {
          recording.stop().then(() => emit({ type: 'STOPPED', name: recording.name })).catch(fail);
        }, recordMs);
      });
      recording.once('RecordingFinished', () => {
        channel.hangup().then(() => emit({ type: 'HUNGUP', channel: channel.id })).catch(fail);
      });
      channel.answer()
        .then(() => {
          emit({ type: 'ANSWERED', channel: channel.id });
          return channel.record({ name: name, format: 'wav', ifExists: 'overwrite' }, recording);
        })
        .then(() => emit({ type: 'RECORDING', name: name, channel: channel.id }))
        .catch(fail);
    });

    client.on('WebSocketMaxRetries', (err) => fail(err || 'WebSocketMaxRetries'));

    return client.start(app).then(() => emit({ type: 'READY' }));
  }).catch(fail);
}
