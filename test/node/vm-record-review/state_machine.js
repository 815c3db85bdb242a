// state_machine.js — a minimal state machine for the seed's voice mail app.
//
// Not part of the seed (it only says `require('./state_machine')`): a small
// stand-in with the interface the seed uses. States are objects with a
// `state_name` and an `enter()` method; transitions are keyed by the source
// state's name and the event, so a state may transition to itself
// (recording --'*'--> recording).
function StateMachine() {
  var transitions = {};
  var current_state = null;

  this.add_transition = function(src_state, event, dst_state) {
    if (!Object.prototype.hasOwnProperty.call(transitions, src_state.state_name)) {
      transitions[src_state.state_name] = {};
    }
    transitions[src_state.state_name][event] = dst_state;
  };

  this.change_state = function(event) {
    var from = transitions[current_state.state_name] || {};
    var next = from[event];
    if (!next) {
      throw new Error('no transition from ' + current_state.state_name + ' on ' + event);
    }
    current_state = next;
    current_state.enter();
  };

  this.start = function(initial_state) {
    current_state = initial_state;
    current_state.enter();
  };
}

module.exports = StateMachine;
