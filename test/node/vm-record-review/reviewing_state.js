// reviewing_state.js — verbatim from the seed ("ARI and Media: Part 1 -
// Recording", section "Operating on Stored Recordings") except for the line
// marked "DEVIATION", which only adds output a test can parse.
//
// As in the seed: playback.stop() and recordings.deleteStored() are called
// without a callback (ari-client then returns a promise nobody handles), and
// the recording state is entered right after deleteStored() was sent,
// without waiting for its response.
var Event = require('./event');

function ReviewingState(call) {
  this.state_name = "reviewing";

  this.enter = function() {
    var playback = call.client.Playback();
    var url = "recording:" + call.vm_path;
    console.log("Entering reviewing state");
    // DEVIATION (test output): one JSON line per state entry.
    console.log(JSON.stringify({type: 'state', state: 'reviewing', playback: playback.id, media: url, t: Date.now()}));
    call.channel.on("ChannelHangupRequest", on_hangup);
    call.channel.on("ChannelDtmfReceived", on_dtmf);
    call.client.on("PlaybackFinished", on_playback_finished);
    call.channel.play({media: url}, playback);

    function cleanup() {
      call.channel.removeListener('ChannelHangupRequest', on_hangup);
      call.channel.removeListener('ChannelDtmfReceived', on_dtmf);
      call.client.removeListener('PlaybackFinished', on_playback_finished);
      if (playback) {
        playback.stop();
      }
    }

    function on_hangup(event, channel) {
      console.log("Accepted recording %s on hangup", call.vm_path);
      playback = null;
      cleanup();
      call.state_machine.change_state(Event.HANGUP);
    }

    function on_playback_finished(event) {
      if (playback && (playback.id === event.playback.id)) {
        playback = null;
      }
    }

    function on_dtmf(event, channel) {
      switch (event.digit) {
        case '#':
          console.log("Accepted recording", call.vm_path);
          cleanup();
          call.state_machine.change_state(Event.DTMF_OCTOTHORPE);
          break;
        case '*':
          console.log("Canceling recording", call.vm_path);
          cleanup();
          call.client.recordings.deleteStored({recordingName: call.vm_path});
          call.state_machine.change_state(Event.DTMF_STAR);
          break;
      }
    }
  }
}

module.exports = ReviewingState;
