import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** The process a run measures, found from the pid it was given. */
export interface TargetProcess {
  pid: number;
  /** Why `pid` is not the pid given, when it is not. */
  note: string | undefined;
}

/** TCP state 0A in /proc/<pid>/net/tcp{,6}. */
const LISTEN = '0A';

/**
 * The process whose CPU and RSS stand for the target's, from `--target-pid`:
 * `pid` itself when it listens on the target's WebSocket `port`, else the one
 * process among its descendants that does (the broker under `npx strands` or a
 * shell, whose pid `$!` gives). Throws otherwise: CPU and RSS of npm or a shell
 * read as zero, and a run would report them as the broker's.
 */
export function resolveTargetProcess(pid: number, port: number): TargetProcess {
  const name = commandName(pid);
  if (name === undefined) throw new Error(`--target-pid ${pid}: no such process`);
  const unreadable: number[] = [];
  const listensOnPort = (p: number): boolean => {
    const listens = listensOn(p, port);
    if (listens === undefined) unreadable.push(p);
    return listens === true;
  };
  if (listensOnPort(pid)) return { pid, note: undefined };
  const descendants = descendantsOf(pid);
  const listeners = descendants.filter(listensOnPort);
  const given = `--target-pid ${pid} (${name})`;
  if (listeners.length === 1) {
    const found = listeners[0]!;
    return { pid: found, note: `${given} does not listen on port ${port}: measuring its descendant ${found} (${commandName(found) ?? '?'}), which does` };
  }
  if (listeners.length > 1) {
    throw new Error(`${given}: ${listeners.length} of its descendants listen on port ${port} (${listeners.join(', ')}); give the pid of the one to measure`);
  }
  if (unreadable.length > 0) {
    throw new Error(`${given}: cannot tell whether it is the server on port ${port}, the open files of ${unreadable.join(', ')} are not readable (run the harness as the server's user)`);
  }
  const n = descendants.length;
  const family = n === 0 ? 'it has no child process' : n === 1 ? 'neither does its one descendant' : `none of its ${n} descendants does either`;
  throw new Error(`${given} is not the server: it does not listen on port ${port} and ${family}, so its CPU and RSS would say nothing about the target (\`ss -ltnp 'sport = :${port}'\` shows which process listens)`);
}

/** The port a ws:// or wss:// URL connects to. */
export function portOf(url: string): number {
  const u = new URL(url);
  return u.port === '' ? (u.protocol === 'wss:' ? 443 : 80) : Number(u.port);
}

function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` holds a socket listening on `port`, in its own network
 * namespace; undefined when its open files cannot be read (another user's process).
 */
function listensOn(pid: number, port: number): boolean | undefined {
  const listening = new Set<string>();
  let tables = 0;
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    tables++;
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === LISTEN && parseInt(f[1]?.split(':')[1] ?? '', 16) === port && f[9] !== undefined) listening.add(f[9]);
    }
  }
  // No table at all: the process has exited, or its namespace is not ours to read.
  if (tables === 0) return commandName(pid) === undefined ? false : undefined;
  if (listening.size === 0) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? false : undefined;
  }
  return fds.some((fd) => {
    try {
      return listening.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? '');
    } catch {
      // Closed since the directory was read.
      return false;
    }
  });
}

/** Every process below `pid` in the process tree, from each /proc/<n>/stat's parent pid. */
function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // Field 4 (ppid) follows the state, after the command name, which may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const siblings = children.get(ppid) ?? [];
    siblings.push(Number(entry));
    children.set(ppid, siblings);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}
