#!/usr/bin/python3
# TEST HARNESS ONLY: long-running, controllable fake heart-rate straps on python-dbusmock's
# bluez5 template (DEVICES.md §8.2). Built from the verified recipe; its three workarounds are
# kept and marked. Events go to stdout as JSON lines; commands come on stdin (see README.md).
import argparse
import json
import math
import queue
import os
import random
import shlex
import stat
import sys
import threading
import time

import dbus

HCI = '/org/bluez/hci0'
DEV_IFACE = 'org.bluez.Device1'
ADAPTER_IFACE = 'org.bluez.Adapter1'
GATT = 'org.bluez.GattCharacteristic1'
GATT_SVC = 'org.bluez.GattService1'
MOCK_IFACE = 'org.freedesktop.DBus.Mock'
OM_IFACE = 'org.freedesktop.DBus.ObjectManager'
PMD = 'fb005c8%d-02e7-f387-1cad-8acd2d8df0c8'
NOTIFY_PERIOD_S = 1.0       # real straps notify about once a second
POLL_S = 0.02               # how often client-side state (Connected, Notifying) is polled
MAX_RR = 9                  # ATT MTU 23, u8 HR, no EE: 20 payload bytes - 2 = 9 RR
REFUSE_CONNECT = (
    "raise dbus.exceptions.DBusException('le-connection-abort-by-local', "
    "name='org.bluez.Error.Failed')")
# Workaround 2: Connect must set Connected, then ServicesResolved.
CONNECT = (
    "self.UpdateProperties('org.bluez.Device1', {'Connected': dbus.Boolean(True)})\n"
    "self.UpdateProperties('org.bluez.Device1', {'ServicesResolved': dbus.Boolean(True)})")
DISCONNECT = (
    "self.UpdateProperties('org.bluez.Device1', "
    "{'ServicesResolved': dbus.Boolean(False), 'Connected': dbus.Boolean(False)})")

bus = dbus.SystemBus()                                  # honours DBUS_SYSTEM_BUS_ADDRESS
_out_lock = threading.Lock()


def emit(event, **fields):
    record = {'event': event, 't': time.monotonic(), 'unix': time.time()}
    record.update(fields)
    line = json.dumps(record)
    with _out_lock:
        try:
            sys.stdout.write(line + '\n')
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass


def obj(path, interface):
    return dbus.Interface(bus.get_object('org.bluez', path), interface)


def u16(x):
    return '0000%04x-0000-1000-8000-00805f9b34fb' % x


def get(path, interface, prop):
    return obj(path, dbus.PROPERTIES_IFACE).Get(interface, prop)


def set_props(path, interface, props):
    obj(path, MOCK_IFACE).UpdateProperties(interface, dbus.Dictionary(props, signature='sv'))


class RrGenerator:
    """Beats on the scenario's monotonic clock. RR (ms) = 60000/HR_mean + respiratory sinus
    arrhythmia (0.25 Hz, +-40 ms) + slow wander + Gaussian jitter (15 ms), clamped to
    300..2000 ms, quantised to 1/1024 s."""

    def __init__(self, seed, hr_mean, start):
        self.rng = random.Random(seed)
        self.base_ms = 60000.0 / hr_mean
        self.rsa_phase = self.rng.uniform(0, 2 * math.pi)
        # slow wander: a few low-frequency sinusoids (periods 40..300 s), about +-30 ms in all
        self.wander = [(self.rng.uniform(6.0, 12.0), 2 * math.pi / self.rng.uniform(40, 300),
                        self.rng.uniform(0, 2 * math.pi)) for _ in range(3)]
        self.start = start
        self.next_beat = start + self.rng.uniform(0.1, 0.9)
        self.pending_raw = None

    def rr_ms(self, t):
        x = t - self.start
        rr = self.base_ms + 40.0 * math.sin(2 * math.pi * 0.25 * x + self.rsa_phase)
        rr += sum(a * math.sin(w * x + p) for a, w, p in self.wander)
        rr += self.rng.gauss(0.0, 15.0)
        return min(2000.0, max(300.0, rr))

    def beats_until(self, now):
        """The raw RR of every beat that completed up to `now`, oldest first."""
        out = []
        while True:
            if self.pending_raw is None:    # drawn once per beat, at its start
                self.pending_raw = round(self.rr_ms(self.next_beat) * 1.024)
            end = self.next_beat + self.pending_raw / 1024.0
            if end > now:
                return out
            out.append(self.pending_raw)
            self.next_beat, self.pending_raw = end, None


class Strap:
    def __init__(self, spec, index, start):
        self.addr = spec.get('address', 'C0:FF:EE:00:00:%02X' % (index + 1))
        self.name = spec.get('name', 'Polar H10 %04dTEST' % index)
        self.hr_only = bool(spec.get('hr_only', False))
        self.no_contact_support = bool(spec.get('no_contact_support', False))
        self.contact_off = False    # `contact off|on`: reports no skin contact
        self.battery = int(spec.get('battery', 87))
        self.body_location = int(spec.get('body_location', 1))
        self.seed = int(spec.get('seed', index + 1))
        self.hr_mean = float(spec.get('hr', spec.get('hr_mean', 60.0)))
        self.pmd = bool(spec.get('pmd', True))
        self.rssi = int(spec.get('rssi', -55))
        self.path = HCI + '/dev_' + self.addr.replace(':', '_')
        self.gen = RrGenerator(self.seed, self.hr_mean, start)
        self.children = []          # GATT object paths, parents first
        self.hrm = None
        self.present = False        # exported on the bus
        self.connected = False      # last seen Connected
        self.notifying = False      # last seen Notifying on 0x2A37
        self.away = False
        self.silent_until = 0.0
        self.silence_dropped = 0
        self.connect_calls = 0
        self.disconnect_calls = 0
        self.next_notify = start + NOTIFY_PERIOD_S * (1 + 0.1 * index)
        self.last_hr = round(self.hr_mean)
        self.seq = 0

    def dev_props(self):
        return dbus.Dictionary({
            'Address': self.addr, 'AddressType': 'random', 'Name': self.name, 'Alias': self.name,
            'Adapter': dbus.ObjectPath(HCI), 'RSSI': dbus.Int16(self.rssi),
            'UUIDs': dbus.Array([u16(0x180D)], signature='s'),
            'Paired': False, 'Connected': False, 'Trusted': False, 'Blocked': False,
            'LegacyPairing': False, 'ServicesResolved': False}, signature='sv')

    def create(self, mock):
        props = self.dev_props()
        # Workaround 2: AddObject emits no signal, so the client cannot Connect before our
        # Connect exists; Connect must also set ServicesResolved.
        mock.AddObject(self.path, DEV_IFACE, props, [
            ('Connect', '', '', REFUSE_CONNECT if self.away else CONNECT),
            ('Disconnect', '', '', DISCONNECT)])
        self.children = []
        hrs = self.service(mock, 0x10, u16(0x180D))
        self.hrm = self.characteristic(mock, hrs, 0x11, u16(0x2A37), ['notify'], [])
        self.characteristic(mock, hrs, 0x14, u16(0x2A38), ['read'], [self.body_location])
        bas = self.service(mock, 0x20, u16(0x180F))
        self.characteristic(mock, bas, 0x21, u16(0x2A19), ['read', 'notify'], [self.battery])
        if self.pmd:
            pmd = self.service(mock, 0x30, PMD % 0)
            self.characteristic(mock, pmd, 0x31, PMD % 1, ['read', 'write', 'indicate'],
                                [0x0F, 0x05, 0x00])
            self.characteristic(mock, pmd, 0x34, PMD % 2, ['notify'], [])
        # Workaround 3: explicit signatures for the nested dicts.
        mock.EmitSignal(OM_IFACE, 'InterfacesAdded', 'oa{sa{sv}}', [
            dbus.ObjectPath(self.path), dbus.Dictionary({DEV_IFACE: props}, signature='sa{sv}')])
        self.present, self.connected, self.notifying = True, False, False
        self.connect_calls = self.disconnect_calls = 0
        emit('device_added', addr=self.addr, name=self.name, path=self.path)

    def service(self, mock, handle, uuid):
        path = '%s/service%04x' % (self.path, handle)
        mock.AddObject(path, GATT_SVC, {
            'UUID': uuid, 'Primary': True, 'Device': dbus.ObjectPath(self.path),
            'Includes': dbus.Array([], signature='o')},
            [('MockNoop', '', '', '')])                 # Workaround 1
        self.children.append(path)
        return path

    def characteristic(self, mock, svc, handle, uuid, flags, value):
        path = '%s/char%04x' % (svc, handle)
        mock.AddObject(path, GATT, {
            'UUID': uuid, 'Service': dbus.ObjectPath(svc), 'Notifying': False,
            'Value': dbus.Array(value, signature='y'), 'Flags': dbus.Array(flags, signature='s')}, [
            ('ReadValue', 'a{sv}', 'ay', "ret = self.props['%s']['Value']" % GATT),
            ('WriteValue', 'aya{sv}', '',
             "self.props['%s']['Value'] = dbus.Array(args[0], signature='y')" % GATT),
            ('StartNotify', '', '',
             "self.UpdateProperties('%s', {'Notifying': dbus.Boolean(True)})" % GATT),
            ('StopNotify', '', '',
             "self.UpdateProperties('%s', {'Notifying': dbus.Boolean(False)})" % GATT)])
        self.children.append(path)
        return path

    def remove(self, mock):
        for path in reversed(self.children):
            ifaces = [GATT if '/char' in path.rsplit('/', 1)[-1] else GATT_SVC]
            mock.RemoveObject(path)
            mock.EmitSignal(OM_IFACE, 'InterfacesRemoved', 'oas',
                            [dbus.ObjectPath(path), dbus.Array(ifaces, signature='s')])
        mock.RemoveObject(self.path)
        mock.EmitSignal(OM_IFACE, 'InterfacesRemoved', 'oas',
                        [dbus.ObjectPath(self.path), dbus.Array([DEV_IFACE], signature='s')])
        self.children, self.hrm = [], None
        self.present, self.connected, self.notifying = False, False, False
        emit('device_removed', addr=self.addr)

    def link_loss(self, reason):
        """Device-side link loss: ServicesResolved, Connected, then Notifying go False."""
        if not self.present:
            return
        was_connected, was_notifying = self.connected, self.notifying
        # Only what is true turns false: the mock emits PropertiesChanged on every update (BlueZ
        # only on a change), and btleplug turns each Connected=false into DeviceDisconnected.
        dev = {k: dbus.Boolean(False) for k in ('ServicesResolved', 'Connected')
               if get(self.path, DEV_IFACE, k)}
        if dev:
            set_props(self.path, DEV_IFACE, dev)
        if get(self.hrm, GATT, 'Notifying'):
            set_props(self.hrm, GATT, {'Notifying': dbus.Boolean(False)})
        self.connected = self.notifying = False
        if was_notifying:
            emit('unsubscribed', addr=self.addr, by='device', reason=reason)
        if was_connected:
            emit('disconnected', addr=self.addr, by='device', reason=reason)

    def set_connect_refused(self, refused):
        obj(self.path, MOCK_IFACE).AddMethod(DEV_IFACE, 'Connect', '', '',
                                             REFUSE_CONNECT if refused else CONNECT)

    def poll(self):
        """Notice what the client did (Connect, Disconnect, StartNotify, StopNotify)."""
        if not self.present:
            return
        dev_mock = obj(self.path, MOCK_IFACE)
        calls = len(dev_mock.GetMethodCalls('Connect'))
        if calls > self.connect_calls and self.away:
            emit('connect_refused', addr=self.addr, attempts=calls - self.connect_calls,
                 error='org.bluez.Error.Failed: le-connection-abort-by-local')
        self.connect_calls = calls
        disc = len(dev_mock.GetMethodCalls('Disconnect'))
        disc_new = disc > self.disconnect_calls
        self.disconnect_calls = disc
        connected = bool(get(self.path, DEV_IFACE, 'Connected'))
        notifying = bool(get(self.hrm, GATT, 'Notifying'))
        if self.connected and (not connected or disc_new):
            # a client Disconnect may be undone by a Connect within one poll; report both
            if self.notifying:
                self.notifying = False
                emit('unsubscribed', addr=self.addr, by='client', reason='disconnect')
            emit('disconnected', addr=self.addr, by='client')
            self.connected = False
        if connected and not self.connected:
            self.connected = True
            self.seq = 0
            emit('connected', addr=self.addr, by='client')
        if notifying and not self.notifying:
            self.notifying = True
            emit('subscribed', addr=self.addr, by='client')
        elif self.notifying and not notifying:
            self.notifying = False
            emit('unsubscribed', addr=self.addr, by='client', reason='stop_notify')

    def frame(self, rr):
        flags = 0x00 if self.no_contact_support else (0x04 if self.contact_off else 0x06)
        if not self.hr_only:
            flags |= 0x10
        if rr:
            self.last_hr = max(1, min(255, round(60000.0 / (rr[-1] / 1.024))))
        data = [flags, self.last_hr]
        if not self.hr_only:
            for raw in rr:
                data += [raw & 0xFF, raw >> 8]
        return data

    def tick(self, now):
        """One notification per period; the RR of beats completed since the previous one."""
        if now < self.next_notify:
            return
        while self.next_notify <= now:
            self.next_notify += NOTIFY_PERIOD_S
        rr = self.gen.beats_until(now)
        if not (self.present and self.connected and self.notifying):
            return                  # nobody is listening: those beats are gone
        if now < self.silent_until:
            self.silence_dropped += len(rr)
            return
        if self.silent_until:
            emit('silence_end', addr=self.addr, beats_dropped=self.silence_dropped)
            self.silent_until, self.silence_dropped = 0.0, 0
        rr = rr[-MAX_RR:]
        data = self.frame(rr)
        if self.hr_only:
            rr = []
        set_props(self.hrm, GATT, {'Value': dbus.Array(data, signature='y')})
        self.seq += 1
        emit('notify', addr=self.addr, hex=bytes(data).hex(), rr_raw=rr, hr=self.last_hr,
             seq=self.seq)


def parse_straps(values):
    specs = []
    for v in values or []:
        v = v.strip()
        if v.startswith('[') or v.startswith('{'):
            parsed = json.loads(v)
            specs += parsed if isinstance(parsed, list) else [parsed]
        else:                       # key=value,key=value
            spec = {}
            for part in v.split(','):
                if not part:
                    continue
                k, _, val = part.partition('=')
                k = k.strip()
                val = val.strip()
                if k in ('hr_only', 'no_contact_support', 'pmd'):
                    spec[k] = val.lower() in ('1', 'true', 'yes', '')
                elif k in ('battery', 'body_location', 'seed', 'rssi'):
                    spec[k] = int(val)
                elif k in ('hr', 'hr_mean'):
                    spec[k] = float(val)
                else:
                    spec[k] = val
            specs.append(spec)
    if not specs:
        specs = [{'address': 'C0:FF:EE:00:00:01', 'name': 'Polar H10 0000TEST'}]
    return specs


DEVNULL_SECONDS = 30.0


def stdin_is_devnull():
    try:
        st, null = os.fstat(sys.stdin.fileno()), os.stat('/dev/null')
    except (OSError, ValueError):
        return True
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == null.st_rdev


def stdin_reader(q):
    try:
        for line in sys.stdin:
            q.put(line.strip())
    except Exception:           # noqa: BLE001 (closing stdin must not crash us)
        pass
    q.put(None)


class Scenario:
    def __init__(self, args):
        self.args = args
        start = time.monotonic()
        self.straps = [Strap(s, i, start) for i, s in enumerate(parse_straps(args.straps))]
        self.mock = obj('/', MOCK_IFACE)
        self.discovering = False
        self.powered = True
        self.created = False

    def strap(self, words):
        """Pops an optional ADDR from words; default: the first strap."""
        if words and words[0].count(':') == 5:
            addr = words.pop(0).upper()
            for s in self.straps:
                if s.addr.upper() == addr:
                    return s
            raise ValueError('unknown strap %s' % addr)
        return self.straps[0]

    def create_all(self):
        for s in self.straps:
            if not s.present:
                s.create(self.mock)
        self.created = True

    def command(self, line):
        """Applies one command line, then echoes it (so the echo means "in effect").
        Returns False on quit; raises on a bad command (echoed with ok false)."""
        if not line.split():
            return True
        try:
            going_on = self.apply(line)
        except Exception:
            emit('command', line=line, ok=False)
            raise
        emit('command', line=line, ok=True)
        return going_on

    def apply(self, line):
        words = line.split()
        cmd, rest = words[0].lower(), words[1:]
        now = time.monotonic()
        if cmd == 'quit':
            return False
        if cmd == 'power':
            on = rest and rest[0].lower() == 'on'
            if not rest or rest[0].lower() not in ('on', 'off'):
                raise ValueError('usage: power on|off')
            # A powered-off adapter connects to nothing: the adapter goes off and every
            # strap refuses connections *before* the links drop, so a client that reconnects
            # at once on the link loss finds the adapter off instead of winning a race.
            if not on:
                set_props(HCI, ADAPTER_IFACE, {'Powered': dbus.Boolean(False)})
                self.powered = False
                for s in self.straps:
                    if s.present:
                        s.set_connect_refused(True)
                for s in self.straps:
                    s.link_loss('power_off')
                if self.discovering:
                    set_props(HCI, ADAPTER_IFACE, {'Discovering': dbus.Boolean(False)})
            else:
                for s in self.straps:
                    if s.present:
                        s.set_connect_refused(s.away)
                set_props(HCI, ADAPTER_IFACE, {'Powered': dbus.Boolean(True)})
                self.powered = True
            emit('power', on=on)
            return True
        s = self.strap(rest)
        if cmd == 'disconnect':
            s.link_loss('link_loss')
        elif cmd == 'silence':
            if not rest:
                raise ValueError('usage: silence [ADDR] SECONDS')
            s.silent_until, s.silence_dropped = now + float(rest[0]), 0
            emit('silence_start', addr=s.addr, seconds=float(rest[0]))
        elif cmd == 'away':
            s.away = True
            if s.present:
                s.set_connect_refused(True)
                s.link_loss('away')
        elif cmd == 'back':
            s.poll()                # report refused attempts made while away
            s.away = False
            if s.present:
                s.set_connect_refused(False)
        elif cmd == 'vanish':
            if s.present:
                s.link_loss('vanish')
                s.remove(self.mock)
        elif cmd == 'contact':
            s.contact_off = bool(rest) and rest[0].lower() == 'off'
        elif cmd == 'appear':
            if not s.present:
                s.create(self.mock)
        else:
            raise ValueError('unknown command %r' % cmd)
        return True

    def run(self):
        # the mock names its adapter 'hci0'; retry briefly in case org.bluez is still settling
        obj('/', 'org.bluez.Mock').AddAdapter('hci0', 'attune-ci')
        get(HCI, ADAPTER_IFACE, 'Powered')
        if self.args.devices_at_start:
            self.create_all()
        emit('ready', adapter=HCI, straps=[s.addr for s in self.straps])
        q = queue.Queue()
        threading.Thread(target=stdin_reader, args=(q,), daemon=True).start()
        t0 = time.monotonic()
        end = t0 + self.args.seconds if self.args.seconds is not None else None
        schedule = sorted((t0 + float(a.split(None, 1)[0]), a.split(None, 1)[1])
                          for a in self.args.at or [])
        while True:
            now = time.monotonic()
            if end is not None and now >= end:
                emit('exit', reason='seconds')
                return 0
            try:
                while True:
                    line = q.get_nowait()
                    if line is None:
                        if end is None:
                            emit('exit', reason='stdin_closed')
                            return 0
                        continue
                    try:
                        if not self.command(line):
                            emit('exit', reason='quit')
                            return 0
                    except Exception as e:      # noqa: BLE001
                        emit('error', where='command', line=line, message=str(e))
            except queue.Empty:
                pass
            while schedule and schedule[0][0] <= now:
                line = schedule.pop(0)[1]
                try:
                    if not self.command(line):
                        emit('exit', reason='quit')
                        return 0
                except Exception as e:          # noqa: BLE001
                    emit('error', where='command', line=line, message=str(e))
            try:
                discovering = bool(get(HCI, ADAPTER_IFACE, 'Discovering'))
                if discovering != self.discovering:
                    self.discovering = discovering
                    emit('discovering', value=discovering)
                if discovering and not self.created:
                    self.create_all()   # the client called start_scan(), as in the recipe
                for s in self.straps:
                    s.poll()
                    s.tick(now)
            except Exception as e:              # noqa: BLE001
                emit('error', where='loop', message=str(e))
                time.sleep(0.2)
            time.sleep(POLL_S)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--straps', action='append', metavar='SPEC',
                   help='a JSON object, a JSON list of objects, or key=value,... '
                        '(address, name, hr_only, no_contact_support, battery, body_location, '
                        'seed, hr, pmd, rssi); repeatable')
    p.add_argument('--seconds', type=float, default=None,
                   help='total run time (default: until stdin closes or "quit")')
    p.add_argument('--devices-at-start', action='store_true',
                   help='export the straps at once instead of when Discovering becomes true')
    p.add_argument('--at', action='append', metavar="'SECONDS COMMAND'",
                   help='run COMMAND at SECONDS after ready (as if typed on stdin); repeatable')
    # with-mock-bluez.sh starts us without arguments and with stdin on /dev/null
    args = p.parse_args(shlex.split(os.environ.get('BLE_SCENARIO_ARGS', '')) + sys.argv[1:])
    if args.seconds is None and stdin_is_devnull():
        args.seconds = DEVNULL_SECONDS
        emit('note', message='stdin is /dev/null: running %g s (set --seconds)' % args.seconds)
    try:
        return Scenario(args).run()
    except KeyboardInterrupt:
        return 0
    except Exception as e:                      # noqa: BLE001
        emit('error', where='startup', message=str(e))
        return 1


if __name__ == '__main__':
    sys.exit(main())
