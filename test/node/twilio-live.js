// The official Twilio Node library, unmodified, controlling the recording of
// a live call through tapedeck (its HTTP client only sends api.twilio.com's
// requests to TWILIO_BASE). One action per run (TWILIO_ACTION), one JSON line
// out, so that the Go test (test/e2e/twilio_test.go) sends audio in between:
//   create  client.calls(sid).recordings.create(TWILIO_PARAMS)
//   update  client.calls(sid).recordings(TWILIO_RECORDING).update(TWILIO_PARAMS)
const twilio = require("twilio");

const base = process.env.TWILIO_BASE;
const client = twilio(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN, {
  httpClient: {
    inner: new twilio.RequestClient(),
    request(opts) {
      opts.uri = opts.uri.replace(/^https:\/\/api\.twilio\.com/, base);
      return this.inner.request(opts);
    },
  },
});
const callSid = process.env.TWILIO_CALL_SID;
const params = JSON.parse(process.env.TWILIO_PARAMS || "{}");
const out = (type, fields) => console.log(JSON.stringify({ type, ...fields }));

(async () => {
  let r;
  switch (process.env.TWILIO_ACTION) {
    case "create":
      r = await client.calls(callSid).recordings.create(params);
      break;
    case "update":
      r = await client.calls(callSid).recordings(process.env.TWILIO_RECORDING).update(params);
      break;
    default:
      throw new Error("TWILIO_ACTION: create or update");
  }
  out("result", {
    sid: r.sid, callSid: r.callSid, status: r.status, channels: r.channels, source: r.source,
    track: r.track, uri: r.uri, duration: r.duration, startTime: r.startTime && r.startTime.toISOString(),
  });
})().catch((e) => {
  out("result", { error: true, status: e.status, code: e.code, message: e.message, moreInfo: e.moreInfo });
});
