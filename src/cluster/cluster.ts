import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { UpgradeAuthorizer } from '../admission/upgrade-authorizer';
import type { BackendPool } from '../backends/backend-pool';
import type { BrokerConfig } from '../config';
import type { Component } from '../lifecycle';
import { errorLine } from '../protocol/serializers';
import { liveView } from '../stats';
import { packageVersion } from '../version';
import { ClusterHub, type LocalClients, type BusStats } from './cluster-hub';
import { Directory, type NodeEntry } from './directory';
import type { NatsTransport } from './nats-transport';
import { Peers, type PeerStats } from './peers';
import { Subjects } from './subjects';
import type { Transport } from './transport';

/** What the cluster counts, for metrics and the status page. */
export interface ClusterStats {
  readonly nodeId: string;
  readonly connected: boolean;
  readonly bus: Readonly<BusStats>;
  readonly peers: Readonly<PeerStats>;
  /** Subjects held for rooms and client ids. */
  readonly subscriptions: number;
  readonly nodes: readonly NodeEntry[];
  /** Nodes that left or went silent since start. */
  readonly nodesLost: number;
}

/** A fresh node id: this host's name (as far as it suits a subject) and random hex. */
function freshNodeId(): string {
  const host = hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40) || 'node';
  return `${host}-${randomBytes(4).toString('hex')}`;
}

/**
 * This broker as one node of a cluster: its hub (sends reach every node),
 * its directory (which nodes exist, which have backends) and its peers (the
 * backends of the others). Joins the broker's parts once, at setup.
 */
export class Cluster implements Component {
  readonly nodeId: string;
  readonly hub: ClusterHub;
  readonly directory: Directory;
  readonly peers: Peers;
  private readonly transport: Transport & { start(): Promise<void> };
  private nodesLost = 0;

  constructor(
    config: BrokerConfig,
    local: LocalClients,
    private readonly pool: BackendPool,
    authorizer: UpgradeAuthorizer,
    private readonly log: Logger,
    makeTransport: (nodeId: string) => Transport & { start(): Promise<void> } = (nodeId) => newNatsTransport(config, nodeId, log),
  ) {
    this.nodeId = config.nodeId ?? freshNodeId();
    const transport = (this.transport = makeTransport(this.nodeId));
    const subjects = new Subjects(config.clusterPrefix);
    this.directory = new Directory(
      transport,
      subjects,
      { id: this.nodeId, version: packageVersion(), backends: () => pool.size },
      config.clusterHeartbeat,
      { changed: () => this.changed(), gone: (node, why) => this.gone(node, why) },
      log,
    );
    this.hub = new ClusterHub(local, transport, subjects, this.nodeId, this.directory);
    this.peers = new Peers(transport, subjects, this.nodeId, this.directory, pool, authorizer, config.balance === 'client', log);
    transport.onStatus((up) => {
      if (up) {
        this.log.info({ node: this.nodeId }, 'cluster bus connected again: rooms resubscribed');
        this.directory.announce();
      } else {
        this.log.warn({ node: this.nodeId }, 'cluster bus down: serving this node\'s clients only; sends to other nodes are dropped and counted until it is back');
        this.directory.forgetAll();
      }
    });
  }

  readonly stats: ClusterStats = liveView<ClusterStats>({
    nodeId: () => this.nodeId,
    connected: () => this.transport.connected,
    bus: () => this.hub.stats,
    peers: () => this.peers.stats,
    subscriptions: () => this.hub.subscriptions,
    nodes: () => this.directory.nodes,
    nodesLost: () => this.nodesLost,
  });

  async start(): Promise<void> {
    await this.transport.start();
    this.hub.start();
    await this.directory.start();
    this.peers.update();
    this.log.info({ node: this.nodeId, maxPayload: this.transport.maxPayload }, 'cluster: joined');
  }

  async stop(): Promise<void> {
    this.peers.stop();
    await this.directory.stop();
    this.hub.stop();
    await this.transport.close();
  }

  /** This node's backends came or went. */
  backendsChanged(): void {
    this.peers.update();
    this.directory.announce();
  }

  private changed(): void {
    this.peers.update();
    // Backends may have appeared elsewhere: what waits in the queue can go now.
    this.pool.drainQueue();
  }

  /**
   * A node is gone. One that left closed its clients first (their
   * `disconnected` events went out then); one that went silent may be dead,
   * and then no `disconnected` event will come for its clients (only it knew
   * them), or cut off from the bus, and then its clients' events come again
   * when it is back. This node's backends are told once.
   */
  private gone(node: string, why: 'left' | 'silent'): void {
    this.nodesLost++;
    const text =
      why === 'left'
        ? `cluster node ${node} left: its clients were closed and their disconnected events sent`
        : `cluster node ${node} went silent: if it died its clients are gone and no disconnected events will come for them; if it was cut off from the bus, their events come again when it is back`;
    for (const link of this.pool.all) link.send(errorLine(text, { node }));
  }
}

function newNatsTransport(config: BrokerConfig, nodeId: string, log: Logger): NatsTransport {
  // Required here, not imported: only a cluster node loads the NATS client (about 10 MB and 50 ms at start).
  const { NatsTransport } = require('./nats-transport') as typeof import('./nats-transport');
  return new NatsTransport(
    { servers: config.cluster ?? [], credsFile: config.clusterCreds, tlsCaFile: config.clusterTlsCa, tlsCertFile: config.clusterTlsCert, tlsKeyFile: config.clusterTlsKey, name: nodeId },
    log,
  );
}
