'use strict';
// Peers for `--peers`: rsync daemon, OpenSSH (scp, sftp) and vsftpd + curl, installed with apt-get
// if missing and started by us on 127.0.0.1 and free high ports (after shared/peers/servers.sh).
// Debian's service scripts are kept from starting the daemons during install (policy-rc.d), so the
// only daemons running are the ones started here, and they are stopped by pid (servers.stopAll).
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { freePort, log, sh } = require('./util');
const { startProcess } = require('./servers');

const NEEDED = { rsync: 'rsync', sshd: 'openssh-server', ssh: 'openssh-client', scp: 'openssh-client', sftp: 'openssh-client', vsftpd: 'vsftpd', curl: 'curl' };
const BIN = { sshd: '/usr/sbin/sshd', vsftpd: '/usr/sbin/vsftpd' };

const have = (cmd) => (BIN[cmd] ? fs.existsSync(BIN[cmd]) : spawnSync('bash', ['-c', `command -v ${cmd}`]).status === 0);

/** Installs what is missing. Returns the list of tools that are available afterwards. */
const install = () => {
  const missing = [...new Set(Object.entries(NEEDED).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg))];
  if (missing.length) {
    log(`--peers: apt-get install ${missing.join(' ')}`);
    const policy = '/usr/sbin/policy-rc.d';
    const ours = !fs.existsSync(policy);
    if (ours) fs.writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    try {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
      spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
      const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
      if (r.status !== 0) log('--peers: apt-get install failed; peers that are missing are skipped');
    } finally {
      if (ours) fs.rmSync(policy, { force: true });
    }
  }
  fs.mkdirSync('/run/sshd', { recursive: true });
  fs.mkdirSync('/var/run/vsftpd/empty', { recursive: true });
  if (sh('id ftp >/dev/null 2>&1 && echo yes') !== 'yes') sh('useradd --system --home-dir /srv/ftp --shell /usr/sbin/nologin ftp');
  return Object.keys(NEEDED).filter(have);
};

const versions = () => {
  const v = (pkg) => sh(`dpkg-query -W -f '\${Version}' ${pkg} 2>/dev/null`) || 'not installed';
  return { rsync: v('rsync'), openssh: v('openssh-server'), vsftpd: v('vsftpd'), curl: v('curl') };
};

/** rsync daemon with one module per destination: name -> path (the server roots). */
const startRsyncd = async (workDir, modules) => {
  const port = await freePort();
  const conf = path.join(workDir, 'rsyncd.conf');
  let text = `use chroot = no\nuid = root\ngid = root\nlog file = ${path.join(workDir, 'rsyncd.log')}\n`;
  for (const [name, dir] of Object.entries(modules)) text += `[${name}]\n  path = ${dir}\n  read only = no\n`;
  fs.writeFileSync(conf, text);
  return startProcess('rsyncd', 'rsync', ['--daemon', '--no-detach', '--address=127.0.0.1', `--port=${port}`, `--config=${conf}`], port, path.join(workDir, 'rsyncd.server.log'));
};

/** sshd with fresh host and client keys, root login by key only. Returns the handle with .opts. */
const startSshd = async (workDir) => {
  const d = path.join(workDir, 'ssh');
  fs.mkdirSync(d, { recursive: true });
  const port = await freePort();
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'hostkey')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(d, 'id')]);
  fs.copyFileSync(path.join(d, 'id.pub'), path.join(d, 'authorized_keys'));
  fs.writeFileSync(path.join(d, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${d}/hostkey`, 'PidFile none', 'UsePAM no', 'StrictModes no',
    'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', `AuthorizedKeysFile ${d}/authorized_keys`, 'Subsystem sftp /usr/lib/openssh/sftp-server', '',
  ].join('\n'));
  const h = await startProcess('sshd', BIN.sshd, ['-D', '-e', '-f', path.join(d, 'sshd_config')], port, path.join(workDir, 'sshd.server.log'));
  h.opts = ['-F', '/dev/null', '-i', path.join(d, 'id'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes'];
  return h;
};

/** vsftpd, anonymous, chrooted into root (which must not be writable; uploads go to root/up). */
const startVsftpd = async (workDir, root, tag) => {
  const port = await freePort();
  const conf = path.join(workDir, `vsftpd-${tag}.conf`);
  fs.writeFileSync(conf, [
    'listen=YES', 'listen_ipv6=NO', 'listen_address=127.0.0.1', `listen_port=${port}`, 'background=NO',
    'anonymous_enable=YES', 'no_anon_password=YES', 'local_enable=NO', 'write_enable=YES', 'anon_upload_enable=YES',
    'anon_mkdir_write_enable=YES', 'anon_other_write_enable=YES', 'anon_umask=022', `anon_root=${root}`,
    'pasv_enable=YES', 'pasv_address=127.0.0.1', 'pasv_min_port=61000', 'pasv_max_port=61999', 'connect_from_port_20=NO',
    'seccomp_sandbox=NO', 'isolate=NO', 'isolate_network=NO', 'secure_chroot_dir=/var/run/vsftpd/empty',
    'xferlog_enable=NO', 'dirmessage_enable=NO', 'max_clients=0', 'max_per_ip=0', '',
  ].join('\n'));
  return startProcess(`vsftpd-${tag}`, BIN.vsftpd, [conf], port, path.join(workDir, `vsftpd-${tag}.server.log`));
};

module.exports = { install, versions, startRsyncd, startSshd, startVsftpd };
