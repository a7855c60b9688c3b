// A test SMSC built on the npm `smpp` package (0.5): accepts one bind_transceiver
// (system_id "cig", password "secret"), answers submit_sm (the first THROTTLE of them with
// ESME_RTHROTTLED), sends the deliver_sm listed in DELIVERIES (a JSON file) after the bind,
// and prints one JSON line per event on stdout.
//
// usage: node smsc.js PORT DELIVERIES.json THROTTLE
const smpp = require('smpp');
const fs = require('fs');

const port = Number(process.argv[2]);
const deliveries = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
let throttle = Number(process.argv[4] || 0);
let ids = 0;
const quiet = Boolean(process.env.SMSC_QUIET); // perf runs: no line per submit_sm
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const server = smpp.createServer({}, (session) => {
  session.on('error', (e) => out({ ev: 'error', error: String(e) }));
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== 'cig' || pdu.password !== 'secret') {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    out({ ev: 'bind', version: pdu.interface_version, ms: Date.now() });
    session.send(pdu.response({ system_id: 'npm-smsc' }));
    for (const d of deliveries) {
      const sm = {
        source_addr: d.source, source_addr_ton: 1, source_addr_npi: 1,
        destination_addr: d.dest, dest_addr_ton: 1, dest_addr_npi: 1,
        esm_class: d.esm_class || 0, data_coding: d.data_coding || 0,
        short_message: d.udh ? { udh: Buffer.from(d.udh), message: d.text } : d.text,
      };
      session.deliver_sm(sm, (resp) => out({ ev: 'deliver_resp', tag: d.tag, status: resp.command_status }));
    }
  });
  session.on('submit_sm', (pdu) => {
    if (throttle > 0) {
      throttle -= 1;
      out({ ev: 'throttled' });
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      return;
    }
    const sm = pdu.short_message;
    if (!quiet) out({
      ev: 'submit', source: pdu.source_addr, source_ton: pdu.source_addr_ton, dest: pdu.destination_addr,
      dest_ton: pdu.dest_addr_ton, esm_class: pdu.esm_class, data_coding: pdu.data_coding,
      text: sm.message, udh: (sm.udh || []).map((u) => Array.from(u)),
    });
    ids += 1;
    if (quiet && ids % 1000 === 0) out({ ev: 'count', n: ids, ms: Date.now() });
    session.send(pdu.response({ message_id: 'm' + ids }));
  });
  session.on('enquire_link', (pdu) => { out({ ev: 'enquire_link' }); session.send(pdu.response()); });
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
});
server.listen(port, '127.0.0.1', () => out({ ev: 'listening', port }));
