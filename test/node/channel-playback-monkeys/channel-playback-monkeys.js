/*jshint node: true */
'use strict';
// channel-playback-monkeys.js — the "Playing back a sound file" example of
// the Asterisk wiki page "ARI and Channels: Simple Media Manipulation" (the
// seed), run by test/e2e/seedplayback_test.go against tapedeck with npm
// ari-client 2.2.0.
//
// The seed's code is kept as written (it never answers: the monkeys are
// early media, and the channel is hung up on PlaybackFinished); every change
// is marked "DEVIATION":
//   * the ARI URL comes from $ARI_URL (fallback: the seed's
//     'http://localhost:8088');
//   * extra console.log lines print JSON a test can parse:
//     {"type":"READY"} when the events WebSocket is open, and one line per
//     ARI event received ({"type", "t" (ms since the epoch), "channel",
//     "name", "state", "playback", "cause"}).
// The app name is the seed's hard-coded 'channel-playback-monkeys'.

var ari = require('ari-client');
var util = require('util');

// DEVIATION: URL from $ARI_URL (the seed: 'http://localhost:8088').
ari.connect(process.env.ARI_URL || 'http://localhost:8088', 'asterisk', 'asterisk', clientLoaded);

// handler for client being loaded
function clientLoaded (err, client) {
  if (err) {
    throw err;
  }

  // DEVIATION (test output): say when the events WebSocket is open, and
  // print one JSON line per ARI event received.
  client.on('WebSocketConnected', function() {
    console.log(JSON.stringify({type: 'READY'}));
  });
  client.on('*', function(event) {
    var line = {type: event.type, t: Date.now()};
    if (event.channel && event.channel.id) {
      line.channel = event.channel.id;
      line.name = event.channel.name;
      line.state = event.channel.state;
    }
    if (event.playback) {
      line.playback = event.playback;
    }
    if (event.cause !== undefined) {
      line.cause = event.cause;
    }
    console.log(JSON.stringify(line));
  });
  // END DEVIATION

  // handler for StasisStart event
  function stasisStart(event, channel) {
    console.log(util.format(
        'Monkeys! Attack %s!', channel.name));

    var playback = client.Playback();
    channel.play({media: 'sound:tt-monkeys'},
                  playback, function(err, newPlayback) {
      if (err) {
        throw err;
      }
    });
    playback.on('PlaybackFinished', playbackFinished);

    function playbackFinished(event, completedPlayback) {
      console.log(util.format(
          'Monkeys successfully vanquished %s; hanging them up',
          channel.name));
      channel.hangup(function(err) {
        if (err) {
          throw err;
        }
      });
    }
  }

  // handler for StasisEnd event
  function stasisEnd(event, channel) {
    console.log(util.format(
        'Channel %s just left our application', channel.name));
  }

  client.on('StasisStart', stasisStart);
  client.on('StasisEnd', stasisEnd);

  client.start('channel-playback-monkeys');
}
