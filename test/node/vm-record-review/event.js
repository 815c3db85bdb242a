// event.js — the events of the voice mail state machine.
//
// Not part of the seed ("ARI and Media: Part 1 - Recording" only says
// `require('./event')`): a small stand-in with the constants the seed's
// states use. DTMF_OCTOTHORPE / DTMF_STAR are the digits as they arrive in
// ChannelDtmfReceived.digit.
var Event = {
  // Use "octothorpe" so there is no confusion about "pound" or "hash".
  DTMF_OCTOTHORPE: '#',
  DTMF_STAR: '*',
  // The caller hung up.
  HANGUP: 'hangup'
};

module.exports = Event;
