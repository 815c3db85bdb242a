// The official Wazo JavaScript SDK (npm @wazo/sdk), unmodified, against
// tapedeck's wazo-auth and wazo-confd APIs over HTTPS: an admin logs in,
// reads a user, updates the user's profile and reads it back; the user
// logs in with their own password and reads themselves; a wrong password is
// refused; logging out ends the token. Each step prints one JSON line.
//
// Environment: WAZO_SERVER (host:port; the SDK always speaks https),
// WAZO_ADMIN/WAZO_ADMIN_PASSWORD, WAZO_USER_UUID, WAZO_USER/WAZO_USER_PASSWORD.
// The test certificate's CA comes through NODE_EXTRA_CA_CERTS.
'use strict';

const { WazoApiClient } = require('@wazo/sdk');

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

const out = (type, fields) => console.log(JSON.stringify({ type, ...fields }));

const profileFields = (p) => ({
  id: p.id,
  firstName: p.firstName,
  lastName: p.lastName,
  email: p.email,
  mobileNumber: p.mobileNumber,
  onlineCallRecordEnabled: p.onlineCallRecordEnabled,
  doNotDisturb: p.doNotDisturb,
  exten: p.lines.length && p.lines[0].extensions.length ? p.lines[0].extensions[0].exten : null,
});

async function main() {
  const server = env('WAZO_SERVER');
  const userUuid = env('WAZO_USER_UUID');

  const admin = new WazoApiClient({ server });
  const session = await admin.auth.logIn({ username: env('WAZO_ADMIN'), password: env('WAZO_ADMIN_PASSWORD') });
  out('adminLogin', { token: session.token, uuid: session.uuid, tenantUuid: session.tenantUuid, acl: session.acl,
    expiresInS: Math.round((session.expiresAt - new Date()) / 1000) });
  admin.setToken(session.token);
  out('checkToken', { valid: await admin.auth.checkToken(session.token) });

  const before = await admin.confd.getUser(userUuid);
  out('getUser', profileFields(before));

  before.firstName = 'Alicia';
  before.lastName = 'Liddell';
  before.email = 'alicia@example.com';
  before.mobileNumber = '+15550100';
  out('updateUser', { ok: await admin.confd.updateUser(userUuid, before) });
  out('getUserAfter', profileFields(await admin.confd.getUser(userUuid)));

  const users = await admin.confd.listUsers();
  out('listUsers', { total: users.total, uuids: users.items.map((u) => u.uuid) });

  const userClient = new WazoApiClient({ server });
  const us = await userClient.auth.logIn({ username: env('WAZO_USER'), password: env('WAZO_USER_PASSWORD') });
  userClient.setToken(us.token);
  out('userLogin', { uuid: us.uuid, tenantUuid: us.tenantUuid });
  out('userGetSelf', profileFields(await userClient.confd.getUser(us.uuid)));

  const bad = new WazoApiClient({ server });
  bad.disableErrorLogging();
  try {
    await bad.auth.logIn({ username: env('WAZO_USER'), password: 'wrong-password' });
    out('badLogin', { refused: false });
  } catch (e) {
    out('badLogin', { refused: true, status: e.status });
  }

  await admin.auth.logOut(session.token);
  out('logOut', { validAfter: await admin.auth.checkToken(session.token) });
}

main().then(() => process.exit(0), (err) => {
  out('error', { message: String(err && err.message), status: err && err.status, stack: String(err && err.stack) });
  process.exit(1);
});
