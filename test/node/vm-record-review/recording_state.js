// recording_state.js — from the seed ("ARI and Media: Part 1 - Recording"),
// with on_dtmf as rewritten in its "Cancelling a Recording" section.
// Deviations from the seed are marked "DEVIATION"; they only add output a
// test can parse (one JSON line per state entry / stop / cancel result).
var Event = require('./event')

function RecordingState(call) {
  this.state_name = "recording";

  this.enter = function() {
    var recording = call.client.LiveRecording(call.client, {name: call.vm_path});
    console.log("Entering recording state");
    // DEVIATION (test output): one JSON line per state entry.
    console.log(JSON.stringify({type: 'state', state: 'recording', name: recording.name}));
    call.channel.on("ChannelHangupRequest", on_hangup);
    call.channel.on("ChannelDtmfReceived", on_dtmf);
    call.channel.record({name: recording.name, format: 'wav', beep: true, ifExists: 'overwrite'}, recording);

    function cleanup() {
      call.channel.removeListener('ChannelHangupRequest', on_hangup);
      call.channel.removeListener('ChannelDtmfReceived', on_dtmf);
    }

    function on_hangup(event, channel) {
      console.log("Accepted recording %s on hangup", recording.name);
      cleanup();
      call.state_machine.change_state(Event.HANGUP);
    }

    function on_dtmf(event, channel) {
      switch (event.digit) {
        case '#':
          console.log("Accepted recording", call.vm_path);
          cleanup();
          recording.stop(function(err) {
            // DEVIATION (test output): report the result of the stop request.
            console.log(JSON.stringify({type: 'stop', name: recording.name, error: err ? String(err.message || err) : null}));
            call.state_machine.change_state(Event.DTMF_OCTOTHORPE);
          });
          break;
        // NEW CONTENT
        case '*':
          console.log("Canceling recording", call.vm_path);
          cleanup();
          recording.cancel(function(err) {
            // DEVIATION (test output): report the result of the cancel request.
            console.log(JSON.stringify({type: 'cancel', name: recording.name, error: err ? String(err.message || err) : null}));
            call.state_machine.change_state(Event.DTMF_STAR);
          });
          break;
      }
    }
  }
}

module.exports = RecordingState;
