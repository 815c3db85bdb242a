/*jshint node:true*/
'use strict';
// vm-record.js — the voice mail recorder of the Asterisk wiki page "ARI and
// Media: Part 1 - Recording" (the seed), "Operating on Stored Recordings"
// stage: its application skeleton plus the "vm-call.js" additions (requires
// at the top, setup_state_machine with the reviewing state):
//   recording --#--> reviewing      recording --hangup--> hungup
//   recording --*--> recording      reviewing --#--> ending
//   reviewing --hangup--> hungup    reviewing --*--> recording
//
// The seed's code is kept as written; every change is marked "DEVIATION":
//   * the ARI URL comes from $ARI_URL (fallback: the seed's
//     'http://localhost:8088');
//   * the app name is process.argv[2] as in the seed, falling back to
//     $ARI_APP (tapedeck's test runner, internal/testutil/nodeari, cannot
//     pass arguments);
//   * extra console.log lines print JSON a test can parse:
//     {"type":"READY"} when the events WebSocket is open, and one line per
//     ARI event ({"type":<event type>, "t", "channel", "digit", "args",
//     "recording", "playback"}).
// The state files print {"type":"state","state":...} on every state entry.
// event.js and state_machine.js are not in the seed; they are small
// stand-ins with the interface the seed uses (as in test/node/vm-record).

var ari = require('ari-client');
var util = require('util');
var path = require('path');

var Event = require('./event');
var StateMachine = require('./state_machine');
// As we add new states to our state machine, this is where we will
// add the new required states.
var RecordingState = require('./recording_state');
var EndingState = require('./ending_state');
var HungUpState = require('./hungup_state');
var ReviewingState = require('./reviewing_state');

// DEVIATION: URL from $ARI_URL (the seed: 'http://localhost:8088').
ari.connect(process.env.ARI_URL || 'http://localhost:8088', 'asterisk', 'asterisk', clientLoaded);

var VoiceMailCall = function(ari_client, channel, mailbox) {
  this.client = ari_client;
  this.channel = channel;
  this.vm_path = path.join('voicemail', mailbox, Date.now().toString());

  this.setup_state_machine = function() {
    var hungup_state = new HungUpState(this);
    var recording_state = new RecordingState(this);
    var ending_state = new EndingState(this);
    var reviewing_state = new ReviewingState(this);

    this.state_machine = new StateMachine();
    this.state_machine.add_transition(recording_state, Event.DTMF_OCTOTHORPE, reviewing_state);
    this.state_machine.add_transition(recording_state, Event.HANGUP, hungup_state);
    this.state_machine.add_transition(recording_state, Event.DTMF_STAR, recording_state);
    this.state_machine.add_transition(reviewing_state, Event.DTMF_OCTOTHORPE, ending_state);
    this.state_machine.add_transition(reviewing_state, Event.HANGUP, hungup_state);
    this.state_machine.add_transition(reviewing_state, Event.DTMF_STAR, recording_state);
    this.state_machine.start(recording_state);
  }

  this.setup_state_machine();
}


function clientLoaded(err, client) {
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
    }
    if (event.digit !== undefined) {
      line.digit = event.digit;
    }
    if (event.args !== undefined) {
      line.args = event.args;
    }
    if (event.recording) {
      line.recording = event.recording;
    }
    if (event.playback) {
      line.playback = event.playback;
    }
    console.log(JSON.stringify(line));
  });
  // END DEVIATION

  client.on('StasisStart', stasisStart);

  function stasisStart(event, channel) {
    var mailbox = event.args[0]
    channel.answer(function(err) {
      if (err) {
        throw err;
      }
      new VoiceMailCall(client, channel, mailbox);
    });
  }

  // DEVIATION: the app name falls back to $ARI_APP (the seed: process.argv[2]).
  client.start(process.argv[2] || process.env.ARI_APP);
}
