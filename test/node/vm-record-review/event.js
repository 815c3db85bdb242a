'use strict';
// Not part of the seed (it omits this module): the same small helper as the
// recording-only stage, shared rather than copied.
module.exports = require('../vm-record/event');
