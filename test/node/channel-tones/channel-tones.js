/*jshint node: true */
'use strict';
// channel-tones.js — the "Playing back tones" example of the Asterisk wiki
// page "ARI and Channels: Simple Media Manipulation" (the seed), run by
// test/e2e/seedplayback_test.go against tapedeck with npm ari-client 2.2.0.
//
// The seed's code is kept as written (timers included: answer after 8 s,
// hang up 1 s later); every change is marked "DEVIATION":
//   * the ARI URL comes from $ARI_URL (fallback: the seed's
//     'http://localhost:8088');
//   * extra console.log lines print JSON a test can parse:
//     {"type":"READY"} when the events WebSocket is open, and one line per
//     ARI event received ({"type", "t" (ms since the epoch), "channel",
//     "name", "state", "playback", "cause"}).
// The app name is the seed's hard-coded 'channel-tones'.

var ari = require('ari-client');
var util = require('util');

var timers = {};
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
        'Channel %s has entered the application', channel.name));

    var playback = client.Playback();
    channel.play({media: 'tone:ring;tonezone=fr'},
                 playback, function(err, newPlayback) {
      if (err) {
        throw err;
      }
    });
    // answer the channel after 8 seconds
    var timer = setTimeout(answer, 8000);
    timers[channel.id] = timer;

    // callback that will answer the channel
    function answer() {
      console.log(util.format('Answering channel %s', channel.name));
      playback.stop(function(err) {
        if (err) {
          throw err;
        }
      });
      channel.answer(function(err) {
        if (err) {
          throw err;
        }
      });
      // hang up the channel in 1 seconds
      var timer = setTimeout(hangup, 1000);
      timers[channel.id] = timer;
    }

    // callback that will hangup the channel
    function hangup() {
      console.log(util.format('Hanging up channel %s', channel.name));
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
    var timer = timers[channel.id];
    if (timer) {
      clearTimeout(timer);
      delete timers[channel.id];
    }
  }

  client.on('StasisStart', stasisStart);
  client.on('StasisEnd', stasisEnd);

  client.start('channel-tones');
}
