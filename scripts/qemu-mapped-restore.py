#!/usr/bin/env python3
# A measurement, not part of vmrunner (docs/performance.md cites it).
# Usage: scripts/qemu-mapped-restore.py VMLINUX INITRAMFS [ROUNDS]  (a 6.1 x86_64 kernel and
# its vmrunner initramfs from the cache; see a run's qemu.cmdline)
#
# QEMU 7.2: can a VM be restored with its RAM mapped from a file (x-ignore-shared)?
# Boots the 6.1 x86_64 VM as vmrunner does (same kernel, initramfs, devices), but with
# its RAM a memory-backend-file (share=on) on /dev/shm; at the agent's ready it is
# stopped and saved twice: a full stream, and with x-ignore-shared (device state only).
# Then restores alternately: full stream into anonymous RAM (as vmrunner does today)
# and device state only with the RAM file mapped private (share=off, copy-on-write),
# each time sending an empty plan and bye, timing QEMU start -> running and -> done.
import json, os, socket, subprocess, sys, time, shutil, statistics, tempfile

K = sys.argv[1]; INITRD = sys.argv[2]; ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
D = tempfile.mkdtemp(prefix='mapped-restore'); RAM = f'/dev/shm/mapped-restore-{os.getpid()}'; SNAPRAM = RAM + '.snap'
MEM = 512
# Without it the guest hangs calibrating its TSC (vmrunner measures it; see qemu.cmdline).
TSC = int(float(next(l for l in open('/proc/cpuinfo') if l.startswith('cpu MHz')).split(':')[1]) * 1000)

def qmp_connect(path):
    for _ in range(500):
        try:
            s = socket.socket(socket.AF_UNIX); s.connect(path); break
        except OSError:
            time.sleep(0.01)
    f = s.makefile('rw')
    json.loads(f.readline())
    cmd(f, 'qmp_capabilities')
    return s, f

def cmd(f, name, **args):
    f.write(json.dumps({'execute': name, 'arguments': args}) + '\n'); f.flush()
    while True:
        r = json.loads(f.readline())
        if 'return' in r or 'error' in r:
            if 'error' in r: raise RuntimeError(f'{name}: {r["error"]}')
            return r['return']

def wait_event(f, name, timeout=120):
    while True:
        r = json.loads(f.readline())
        if r.get('event') == name: return r

def start(tmp, memobj, incoming):
    ctl = socket.socket(socket.AF_UNIX); ctl.bind(f'{tmp}/ctl'); ctl.listen(1)
    args = ['qemu-system-x86_64', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot', '-S',
            '-qmp', f'unix:{tmp}/qmp,server=on,wait=on', '-m', str(MEM), '-smp', '1',
            '-object', memobj, '-kernel', K, '-initrd', INITRD,
            '-chardev', f'file,id=console,path={tmp}/console.log', '-serial', 'chardev:console',
            '-chardev', f'socket,id=control,path={tmp}/ctl',
            '-M', 'microvm,x-option-roms=off,memory-backend=mem', '-device', 'virtio-serial-device,id=vser', '-device', 'pvpanic',
            '-accel', 'tcg', '-cpu', 'max', '-device', 'virtserialport,bus=vser.0,chardev=control,name=vmrunner.0',
            '-append', f'panic=-1 rdinit=/init sysrq_always_enabled console=ttyS0 tsc_early_khz={TSC} vmrunner.warm_btf']
    if incoming: args += ['-incoming', incoming]
    p = subprocess.Popen(args, stderr=open(f'{tmp}/qemu.log', 'w'))
    procs.append(p)
    return p, ctl

def readline(conn):
    b = b''
    while not b.endswith(b'\n'):
        c = conn.recv(65536)
        if not c: raise EOFError(b)
        b += c
    return b

def boot_and_save():
    tmp = tempfile.mkdtemp(prefix='map', dir='/tmp')
    p, ctl = start(tmp, f'memory-backend-file,id=mem,size={MEM}M,mem-path={RAM},share=on', None)
    s, f = qmp_connect(f'{tmp}/qmp')
    cmd(f, 'cont')
    conn, _ = ctl.accept()
    t = time.time(); ready = readline(conn); print(f'booted: ready after {time.time()-t:.1f}s', flush=True)
    cmd(f, 'stop')
    cmd(f, 'migrate-set-parameters', **{'max-bandwidth': 1 << 40})
    for name, ignore in (('mapped', True), ('full', False)):
        cmd(f, 'migrate-set-capabilities', capabilities=[{'capability': 'x-ignore-shared', 'state': ignore}])
        t = time.time()
        cmd(f, 'migrate', uri=f'exec:cat > {D}/{name}.state')
        while cmd(f, 'query-migrate').get('status') not in ('completed', 'failed'):
            time.sleep(0.005)
        st = cmd(f, 'query-migrate')
        print(f'saved {name}: {st["status"]} in {time.time()-t:.3f}s, {os.path.getsize(f"{D}/{name}.state")/1e6:.1f} MB', flush=True)
        if ignore:
            t = time.time()
            subprocess.run(['cp', '--sparse=always', RAM, SNAPRAM], check=True)
            du = subprocess.run(['du', '-k', SNAPRAM], capture_output=True, text=True).stdout.split()[0]
            print(f'RAM file copied in {time.time()-t:.3f}s ({int(du)/1024:.0f} MiB allocated of {MEM})', flush=True)
            # QEMU refuses a second migration of a VM a migration paused.
            cmd(f, 'cont'); cmd(f, 'stop')
    p.kill(); p.wait(); shutil.rmtree(tmp); os.unlink(RAM)
    return ready

def restore(mapped):
    tmp = tempfile.mkdtemp(prefix='map', dir='/tmp')
    t0 = time.time()
    if mapped:
        p, ctl = start(tmp, f'memory-backend-file,id=mem,size={MEM}M,mem-path={SNAPRAM},share=off', 'defer')
        s, f = qmp_connect(f'{tmp}/qmp')
        cmd(f, 'migrate-set-capabilities', capabilities=[{'capability': 'x-ignore-shared', 'state': True}])
        cmd(f, 'migrate-incoming', uri=f'exec:cat {D}/mapped.state')
    else:
        p, ctl = start(tmp, f'memory-backend-ram,id=mem,size={MEM}M', f'exec:cat {D}/full.state')
        s, f = qmp_connect(f'{tmp}/qmp')
    while True:
        st = cmd(f, 'query-migrate').get('status')
        if st in ('completed', 'failed'): break
        time.sleep(0.002)
    if st != 'completed':
        raise RuntimeError(f'incoming migration {st}: {open(tmp+"/qemu.log").read()}')
    cmd(f, 'cont')
    t_run = time.time() - t0
    conn, _ = ctl.accept()
    conn.sendall(b'{"v":1,"type":"plan","plan":{"checks":[]}}\n')
    msgs = []
    while True:
        m = json.loads(readline(conn))
        msgs.append(m['type'])
        if m['type'] == 'done': break
    t_done = time.time() - t0
    conn.sendall(b'{"v":1,"type":"bye"}\n')
    wait_event(f, 'SHUTDOWN')
    p.wait()
    shutil.rmtree(tmp)
    return t_run, t_done, msgs

import atexit
procs = []
atexit.register(lambda: [q.kill() for q in procs])
ready = boot_and_save()
res = {False: [], True: []}
for i in range(ROUNDS):
    for mapped in (False, True):
        t_run, t_done, msgs = restore(mapped)
        res[mapped].append((t_run, t_done))
        print(f'round {i+1} {"mapped" if mapped else "stream"}: running after {t_run*1000:.0f} ms, done after {t_done*1000:.0f} ms ({" ".join(msgs)}) load {open("/proc/loadavg").read().split()[0]}', flush=True)
for mapped in (False, True):
    r = res[mapped]
    print(f'{"mapped" if mapped else "stream"}: median running {statistics.median(x[0] for x in r)*1000:.0f} ms, done {statistics.median(x[1] for x in r)*1000:.0f} ms')
os.unlink(SNAPRAM); shutil.rmtree(D)
