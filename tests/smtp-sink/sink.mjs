// A test-only SMTP server for Beffroi's mail tests (tests/it/mail.rs). It accepts every message
// and appends it, with its envelope, as one JSON line to the file named by SINK_OUT:
//   {"from": "...", "to": ["..."], "user": "..." | null, "tls": true | false, "data": "<raw message>"}
// Settings, all from the environment:
//   SINK_OUT          the JSON-lines file (required);
//   SINK_PORT         the port to listen on, on 127.0.0.1 (default 0: any free port);
//   SINK_CERT, SINK_KEY  PEM certificate and key: STARTTLS is offered with them (else not at all);
//   SINK_USER, SINK_PASS AUTH PLAIN is offered and required with these credentials (else no AUTH);
//   SINK_EXIT_ON_STDIN_EOF=1  exit when standard input closes (the test process went away).
// Once listening it prints `SINK_READY <port>` on standard output.
import fs from 'node:fs';
import { SMTPServer } from 'smtp-server';

const out = process.env.SINK_OUT;
if (!out) {
  console.error('SINK_OUT must name the JSON-lines file to write messages to');
  process.exit(2);
}
const certFile = process.env.SINK_CERT;
const keyFile = process.env.SINK_KEY;
const tls = Boolean(certFile && keyFile);
const user = process.env.SINK_USER;
const pass = process.env.SINK_PASS;
const auth = Boolean(user && pass);

const disabledCommands = [];
if (!tls) disabledCommands.push('STARTTLS');
if (!auth) disabledCommands.push('AUTH');

const server = new SMTPServer({
  name: 'sink.test',
  banner: 'Beffroi test sink',
  secure: false,
  key: tls ? fs.readFileSync(keyFile) : undefined,
  cert: tls ? fs.readFileSync(certFile) : undefined,
  disabledCommands,
  authMethods: ['PLAIN'],
  authOptional: !auth,
  // Credentials only after STARTTLS, as a real relay would insist.
  allowInsecureAuth: false,
  logger: false,
  size: 1024 * 1024,
  onAuth(attempt, session, callback) {
    if (attempt.method === 'PLAIN' && attempt.username === user && attempt.password === pass) {
      callback(null, { user: attempt.username });
    } else {
      const err = new Error('Authentication credentials invalid');
      err.responseCode = 535;
      callback(err);
    }
  },
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      const record = {
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
        to: session.envelope.rcptTo.map((r) => r.address),
        user: session.user || null,
        tls: Boolean(session.secure),
        data: Buffer.concat(chunks).toString('utf8'),
      };
      fs.appendFileSync(out, JSON.stringify(record) + '\n');
      callback(null, 'Queued');
    });
  },
});

server.on('error', (err) => console.error('sink error:', err.message));

const port = Number(process.env.SINK_PORT || 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`SINK_READY ${server.server.address().port}\n`);
});

if (process.env.SINK_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
