// ending_state.js (vm-record-review) — verbatim from the seed ("ARI and Media: Part 1 -
// Recording") except for the line marked "DEVIATION".
// Note: `channel_name` is an implicit global, as in the seed; this file is
// deliberately not in strict mode, so that works.
function EndingState(call) {
  this.state_name = "ending";

  this.enter = function() {
    channel_name = call.channel.name;
    console.log("Ending voice mail call from", channel_name);
    // DEVIATION (test output): one JSON line per state entry.
    console.log(JSON.stringify({type: 'state', state: 'ending', channel: channel_name}));
    call.channel.hangup();
  }
}

module.exports = EndingState;
