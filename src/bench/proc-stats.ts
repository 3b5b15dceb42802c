import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';

/** A process's CPU time so far (user + system) and resident memory, from /proc. */
export interface ProcSample {
  cpuUs: number;
  rssBytes: number;
  atUs: number;
}

let ticksPerSecond: number | undefined;

/** /proc/<pid>/stat counts CPU in clock ticks; their rate is asked of the system once. */
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** Undefined when no process is watched (no --target-pid). */
export function readProcSample(pid: number | undefined, atUs: number): ProcSample | undefined {
  if (pid === undefined) return undefined;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return { cpuUs: (ticks * 1e6) / clockTicks(), rssBytes: rssKb * 1024, atUs };
}

/**
 * CPU time every process on the machine has used so far (all cores), from
 * /proc/stat: all but idle and iowait, so steal (time the hypervisor gave to
 * other guests) counts as used, by someone else.
 */
export function readMachineCpuUs(): number {
  const fields = /^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]?.trim().split(/\s+/).map(Number) ?? [];
  // user nice system idle iowait irq softirq steal; guest time is already in user.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1e6) / clockTicks();
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  node: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return { cpuModel: cpus[0]?.model.trim() ?? 'unknown', cores: cpus.length, node: process.version };
}

/** What the target spent between two pairs of samples: CPU over one span, RSS growth over another. */
export interface TargetUsage {
  cpuUs: number;
  wallUs: number;
  rssDeltaBytes: number;
}

export function usageBetween(cpuFrom: ProcSample | undefined, cpuTo: ProcSample | undefined, rssFrom: ProcSample | undefined, rssTo: ProcSample | undefined): TargetUsage | undefined {
  if (!cpuFrom || !cpuTo || !rssFrom || !rssTo) return undefined;
  return { cpuUs: cpuTo.cpuUs - cpuFrom.cpuUs, wallUs: cpuTo.atUs - cpuFrom.atUs, rssDeltaBytes: rssTo.rssBytes - rssFrom.rssBytes };
}
