import { Command, Option } from 'commander';
import { addConnectionOptions, applyHostPort, parseListenPort, type ConnectionFlags } from './connection-options';
import { jsonRequested } from './cli-failure';
import type { FileOpFlags, FileOpKind } from './file-ops.command';
import {
  ADD_EXAMPLES,
  GET_EXAMPLES,
  LS_EXAMPLES,
  MKDIR_EXAMPLES,
  MV_EXAMPLES,
  PROGRAM_EXAMPLES,
  PUT_EXAMPLES,
  RM_EXAMPLES,
  SERVE_EXAMPLES,
  STAT_EXAMPLES,
  TOKEN_EXAMPLES,
} from './help-text';
import type { ServeFlags } from './serve.command';
import type { TokenFlags } from './token.command';
import type { TransferKind } from './transfer.command';

const usageAsJson = (text: string): string => JSON.stringify({ code: 'USAGE', message: text.replace(/^error: /, '').trim(), exit: 2 }) + '\n';

/** Receives an action's exit code; the actions themselves never call process.exit. */
export type ExitCodeSink = (code: number) => void;

const version = (): string => (require('../../package.json') as { version: string }).version;

/**
 * The command line. Actions `require` their implementation when they run, so `rxfer --help` loads
 * only commander (start-up is measured: the target is 250 ms).
 */
export const buildProgram = (setExitCode: ExitCodeSink): Command => {
  const program = new Command('rxfer')
    .description('Verified, atomic, streaming file transfer over TCP (protocol rxfer/1).')
    .version(version(), '-V, --version')
    .showHelpAfterError(!jsonRequested() && '(add --help for usage)')
    // Set before the commands are added, which inherit both: errors come back to main as exceptions.
    .exitOverride()
    // With --json anywhere on the line, even a usage error is one JSON object: scripts never parse prose.
    .configureOutput({ outputError: (text, write) => write(jsonRequested() ? usageAsJson(text) : `rxfer: ${text}`) })
    .addHelpText('after', PROGRAM_EXAMPLES);

  program
    .command('serve')
    .description('run the server until SIGINT or SIGTERM')
    .option('-c, --config <file>', 'JSON config file (defaults are built in)')
    .option('-H, --host <host>', 'address to listen on (overrides the config)')
    .addOption(new Option('-p, --port <port>', 'port to listen on, 0 for any free one (overrides the config)').argParser(parseListenPort))
    .option('-r, --root <dir>', 'storage folder (overrides the config)')
    .addOption(new Option('--metrics-port <port>', 'serve /metrics, /healthz and /readyz on this port, 0 for any free one (overrides metrics.port)').argParser(parseListenPort))
    .addHelpText('after', SERVE_EXAMPLES)
    .action(async (flags: ServeFlags) => {
      const { runServe } = require('./serve.command') as typeof import('./serve.command');
      setExitCode(await runServe(flags));
    });

  const transfer = (name: TransferKind, args: string, description: string, examples: string) =>
    addConnectionOptions(program.command(`${name} ${args}`).description(description))
      .option('--no-resume', 'start over instead of continuing an interrupted upload (whose kept part is verified first)')
      .option('-T, --no-target-directory', 'the last argument is the remote file name, even when it is also a local file')
      .option('--json', 'print one JSON object per file (and errors as JSON on stderr)')
      .addHelpText('after', examples)
      .action(async (names: string[], flags: ConnectionFlags) => {
        const { runTransfer } = require('./transfer.command') as typeof import('./transfer.command');
        setExitCode(await runTransfer(name, names, flags));
      });
  program
    .command('token')
    .description('create a token for a user and print the config entry (with only its hash)')
    .requiredOption('-u, --user <name>', 'user name')
    .option('--role <role>', 'read, write or admin', 'write')
    .option('--root <folder>', "the user's folder inside the storage (default: the user name; \"\" for all)")
    .option('--quota <bytes>', 'bytes the user may store')
    .option('--json', 'print {"token", "user"} as JSON')
    .addHelpText('after', TOKEN_EXAMPLES)
    .action(async (flags: TokenFlags) => {
      const { runToken } = require('./token.command') as typeof import('./token.command');
      setExitCode(await runToken(flags));
    });

  /** put and get: files, or with -r whole folders (tree.command). */
  const fileOrTree = (name: 'put' | 'get', args: string, description: string, recursiveHelp: string, examples: string) =>
    addConnectionOptions(program.command(`${name} ${args}`).description(description))
      .option('-r, --recursive', recursiveHelp)
      .option('--no-resume', 'start over instead of continuing an interrupted transfer (whose kept part is verified first)')
      .option('--no-skip-existing', 'transfer files even when the other side has them already (same size and digest)')
      .option('--json', 'print one JSON object per file or folder (and errors as JSON on stderr)')
      .addHelpText('after', examples)
      .action(async (names: string[], flags: ConnectionFlags & { recursive?: boolean }) => {
        if (flags.recursive) {
          const { runTree } = require('./tree.command') as typeof import('./tree.command');
          setExitCode(await runTree(name, names, flags));
          return;
        }
        const { runTransfer } = require('./transfer.command') as typeof import('./transfer.command');
        setExitCode(await runTransfer(name, names, flags));
      });
  fileOrTree('put', '<local...>', 'upload files (or with -r folders): LOCAL [REMOTE], or LOCAL... FOLDER/', 'upload the folder LOCAL and everything below it as REMOTE (default: its name), or into REMOTE/', PUT_EXAMPLES)
    .option('-T, --no-target-directory', 'the last argument is the remote file name, even when it is also a local file')
    .option('-c, --checksum', 'with -r: read every local file to compare it with the server\'s copy, instead of trusting the digest an earlier run recorded for a file unchanged since (same size, times and inode)');
  transfer('add', '<local...>', 'upload files only if their remote names do not exist yet', ADD_EXAMPLES);
  fileOrTree('get', '<remote...>', 'download files (or with -r folders), verified: REMOTE [LOCAL], or REMOTE... FOLDER/', 'download the folder REMOTE and everything below it into LOCAL/<its name>', GET_EXAMPLES);

  const fileOp = (kind: FileOpKind, args: string, description: string, examples: string, extra?: (command: Command) => Command) => {
    const command = addConnectionOptions(program.command(`${kind} ${args}`).description(description)).option('--json', 'print the result as JSON (and errors as JSON on stderr)');
    (extra ? extra(command) : command)
      .addHelpText('after', examples)
      .action(async (names: string[], flags: FileOpFlags) => {
        const { runFileOp } = require('./file-ops.command') as typeof import('./file-ops.command');
        setExitCode(await runFileOp(kind, Array.isArray(names) ? names : [names], flags));
      });
  };
  fileOp('stat', '<remote>', 'show a file or folder on the server (type, size, digest, modified)', STAT_EXAMPLES);
  fileOp('rm', '<remote...>', 'delete files, empty folders, or with -r folders and everything in them', RM_EXAMPLES, (command) =>
    command.option('-r, --recursive', 'delete folders and everything in them').option('-f, --force', 'a name that does not exist is not an error'),
  );
  fileOp('mv', '<names...>', 'rename on the server: FROM TO, or FROM... FOLDER/ (never over an existing name)', MV_EXAMPLES);
  fileOp('mkdir', '<remote...>', 'create folders with their parents (as mkdir -p: an existing folder is fine)', MKDIR_EXAMPLES);
  addConnectionOptions(program.command('ls [remote]').description('list a folder (files and subfolders/), or show one file'))
    .option('-r, --recursive', 'list everything below the folder')
    .option('--json', 'print the list as JSON (name, type, size, mtimeMs, digest; errors as JSON on stderr)')
    .addHelpText('after', LS_EXAMPLES)
    .action(async (name: string | undefined, flags: ConnectionFlags & { json?: boolean; recursive?: boolean }) => {
      const { runList } = require('./list.command') as typeof import('./list.command');
      setExitCode(await runList(name, flags));
    });
  // `-H host:port`: the port taken from the host, before any action runs (serve has no --tls: skipped).
  program.hook('preAction', (_program, action) => {
    if (!action.options.some((option) => option.long === '--tls')) return;
    try {
      applyHostPort(action);
    } catch (err) {
      action.error(`error: option '-H, --host <host>' ${(err as Error).message}`, { exitCode: 2, code: 'rxfer.hostPort' });
    }
  });
  return program;
};
