import { Command, Option } from 'commander';
import { addConnectionOptions, parseListenPort, type ConnectionFlags } from './connection-options';
import { ADD_EXAMPLES, GET_EXAMPLES, PROGRAM_EXAMPLES, PUT_EXAMPLES, SERVE_EXAMPLES, TOKEN_EXAMPLES } from './help-text';
import type { ServeFlags } from './serve.command';
import type { TokenFlags } from './token.command';
import type { TransferKind } from './transfer.command';

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
    .showHelpAfterError('(add --help for usage)')
    // Set before the commands are added, which inherit both: errors come back to main as exceptions.
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`rxfer: ${text}`) })
    .addHelpText('after', PROGRAM_EXAMPLES);

  program
    .command('serve')
    .description('run the server until SIGINT or SIGTERM')
    .option('-c, --config <file>', 'JSON config file (defaults are built in)')
    .option('-H, --host <host>', 'address to listen on (overrides the config)')
    .addOption(new Option('-p, --port <port>', 'port to listen on, 0 for any free one (overrides the config)').argParser(parseListenPort))
    .option('-r, --root <dir>', 'storage folder (overrides the config)')
    .addHelpText('after', SERVE_EXAMPLES)
    .action(async (flags: ServeFlags) => {
      const { runServe } = require('./serve.command') as typeof import('./serve.command');
      setExitCode(await runServe(flags));
    });

  const transfer = (name: TransferKind, args: string, description: string, examples: string) =>
    addConnectionOptions(program.command(`${name} ${args}`).description(description))
      .option('--no-resume', 'start over instead of continuing an interrupted upload (whose kept part is verified first)')
      .addHelpText('after', examples)
      .action(async (first: string, second: string | undefined, flags: ConnectionFlags) => {
        const { runTransfer } = require('./transfer.command') as typeof import('./transfer.command');
        setExitCode(await runTransfer(name, first, second, flags));
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

  /** put and get: one file, or with -r a whole folder (tree.command). */
  const fileOrTree = (name: 'put' | 'get', args: string, description: string, recursiveHelp: string, examples: string) =>
    addConnectionOptions(program.command(`${name} ${args}`).description(description))
      .option('-r, --recursive', recursiveHelp)
      .option('--no-resume', 'start over instead of continuing an interrupted transfer (whose kept part is verified first)')
      .option('--no-skip-existing', 'transfer files even when the other side has them already (same size and digest)')
      .addHelpText('after', examples)
      .action(async (first: string, second: string | undefined, flags: ConnectionFlags & { recursive?: boolean }) => {
        if (flags.recursive) {
          const { runTree } = require('./tree.command') as typeof import('./tree.command');
          setExitCode(await runTree(name, first, second, flags));
          return;
        }
        const { runTransfer } = require('./transfer.command') as typeof import('./transfer.command');
        setExitCode(await runTransfer(name, first, second, flags));
      });

  fileOrTree('put', '<local> [remote]', 'upload a file (or with -r a folder), creating or replacing REMOTE', 'upload the folder LOCAL and everything below it as REMOTE (default: its name)', PUT_EXAMPLES);
  transfer('add', '<local> [remote]', 'upload a file only if REMOTE does not exist yet', ADD_EXAMPLES);
  fileOrTree('get', '<remote> [local]', 'download a file (or with -r a folder), verified, into LOCAL', 'download the folder REMOTE and everything below it into LOCAL/<its name>', GET_EXAMPLES);
  const fileOp = (kind: 'stat' | 'rm' | 'mv' | 'mkdir', args: string, description: string) =>
    addConnectionOptions(program.command(`${kind} ${args}`).description(description))
      .option('--json', 'print the result as JSON')
      .action(async (...params: unknown[]) => {
        // commander passes the declared arguments, then the options, then the command.
        const names = params.slice(0, -2) as string[];
        const flags = params[params.length - 2] as ConnectionFlags & { json?: boolean };
        const { runFileOp } = require('./file-ops.command') as typeof import('./file-ops.command');
        setExitCode(await runFileOp(kind, names, flags));
      });
  fileOp('stat', '<remote>', 'show a file or folder on the server (type, size, digest, modified)');
  fileOp('rm', '<remote>', 'delete a file or an empty folder on the server');
  fileOp('mv', '<from> <to>', 'rename a file or folder on the server (never over an existing name)');
  fileOp('mkdir', '<remote>', 'create a folder (and its parents) on the server');

  addConnectionOptions(program.command('ls [prefix]').description('list the files under a folder on the server'))
    .option('--json', 'print the list as JSON (name, size, mtimeMs, digest)')
    .action(async (prefix: string | undefined, flags: ConnectionFlags & { json?: boolean }) => {
      const { runList } = require('./tree.command') as typeof import('./tree.command');
      setExitCode(await runList(prefix, flags));
    });
  return program;
};
