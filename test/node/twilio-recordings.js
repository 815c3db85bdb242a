// The official Twilio Node library, unmodified, against tapedeck's Twilio
// Recordings API: its HTTP client is Twilio's own RequestClient, wrapped only
// to send api.twilio.com's requests to tapedeck (TWILIO_BASE). It lists,
// pages, fetches, filters, deletes and lists soft-deleted recordings, and
// prints one JSON line per step for the Go test (test/e2e/twilio_test.go).
const twilio = require("twilio");

const base = process.env.TWILIO_BASE; // http://127.0.0.1:port
const sid = process.env.TWILIO_ACCOUNT_SID;
const token = process.env.TWILIO_AUTH_TOKEN;
const callSid = process.env.TWILIO_CALL_SID;

const out = (type, fields) => console.log(JSON.stringify({ type, ...fields }));

const inner = new twilio.RequestClient();
const httpClient = {
  request(opts) {
    opts.uri = opts.uri.replace(/^https:\/\/api\.twilio\.com/, base);
    return inner.request(opts);
  },
};
const client = twilio(sid, token, { httpClient });

const brief = (r) => ({
  sid: r.sid, callSid: r.callSid, status: r.status, duration: r.duration, channels: r.channels,
  source: r.source, apiVersion: r.apiVersion, mediaUrl: r.mediaUrl, uri: r.uri,
  dateCreated: r.dateCreated && r.dateCreated.toISOString(), startTime: r.startTime && r.startTime.toISOString(),
  errorCode: r.errorCode,
});

(async () => {
  // list() follows next_page_uri through every page of one.
  const all = await client.recordings.list({ pageSize: 1 });
  out("list", { recordings: all.map(brief) });
  const page = await client.recordings.page({ pageSize: 1 });
  out("page", { n: page.instances.length, next: page.nextPageUrl || null });
  const one = await client.recordings(all[0].sid).fetch();
  out("fetch", { recording: brief(one) });
  const byCall = await client.calls(callSid).recordings.list();
  out("callList", { recordings: byCall.map(brief) });
  const filtered = await client.recordings.list({ callSid, dateCreatedAfter: new Date(Date.now() - 3600e3) });
  out("filtered", { recordings: filtered.map(brief) });
  const none = await client.recordings.list({ dateCreatedBefore: new Date("2001-01-01T00:00:00Z") });
  out("before2001", { n: none.length });
  const removed = await client.recordings(all[0].sid).remove();
  out("remove", { removed });
  const after = await client.recordings.list();
  out("afterRemove", { recordings: after.map(brief) });
  const soft = await client.recordings.list({ includeSoftDeleted: true });
  out("softDeleted", { recordings: soft.map(brief) });
  try {
    await client.recordings(all[0].sid).fetch();
    out("fetchDeleted", { error: null });
  } catch (e) {
    out("fetchDeleted", { status: e.status, code: e.code, message: e.message, moreInfo: e.moreInfo });
  }
  try {
    await twilio(sid, "0".repeat(32), { httpClient }).recordings.list();
    out("badToken", { error: null });
  } catch (e) {
    out("badToken", { status: e.status, code: e.code });
  }
  out("done", {});
})().catch((e) => {
  out("error", { message: String(e && e.stack || e), status: e && e.status, code: e && e.code });
  process.exit(1);
});
