/**
 * The soak's accounting (scripts/soak.ts): which missing client messages it
 * counts as in flight to a killed backend, and which as lost silently. Each
 * scene is one client whose #6..#10 are missing, between #1..#5 and #11..#15
 * received by the link `early` (a backend that stays up) or by the link of a
 * backend that is killed; the broker's log of link events is written by hand
 * on the ledger's clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENTS, Ledger, type Audit, type LinkEvent } from '../../scripts/soak';

const CLIENT = 0;
const EARLY_PORT = 40001;

class Scene {
  readonly log: LinkEvent[] = [];
  private ms = 1_000_000;
  readonly ledger = new Ledger(() => this.ms);
  /** The ledger's index of the link that stays up. */
  readonly early: number;

  constructor() {
    this.early = this.link('fault.1', 'fault.1', EARLY_PORT);
  }

  at(ms: number): this {
    this.ms = 1_000_000 + ms;
    return this;
  }

  /** A backend link that connects now: joins in the broker's log and is reported to the ledger. */
  link(owner: string, name: string, port: number): number {
    this.joined(port);
    const link = this.ledger.addLink(owner, name);
    this.ledger.connected(link, port);
    return link;
  }

  joined(port: number): this {
    this.log.push({ joined: true, port, at: this.ms });
    return this;
  }

  left(port: number): this {
    this.log.push({ joined: false, port, at: this.ms });
    return this;
  }

  /** Sends `count` messages of the client. */
  send(count: number): this {
    for (let i = 0; i < count; i++) this.ledger.send(CLIENT);
    return this;
  }

  receive(link: number, from: number, to: number): this {
    for (let seq = from; seq <= to; seq++) this.ledger.receive(link, CLIENT, seq);
    return this;
  }

  audit(): Audit {
    return this.ledger.audit(new Uint32Array(CLIENTS), this.log);
  }
}

/** #1..#5 sent at 10 ms and reported by `early`, #6..#10 sent at 60 ms (missing), then `during`, then #11..#15 sent at 110 ms and reported by `early` at 112 ms. */
function around(scene: Scene, during: (scene: Scene) => void): Scene {
  scene.at(10).send(5).at(12).receive(scene.early, 1, 5);
  scene.at(60).send(5);
  during(scene);
  return scene.at(110).send(5).at(112).receive(scene.early, 11, 15);
}

/** #1..#5 sent at 10 ms and reported by `b0.1/1` (joined at 0 ms), #6..#10 sent at 60 ms (missing); b0.1 is killed. */
function afterDyingLink(): Scene {
  const scene = new Scene();
  scene.ledger.backendStarted('b0.1');
  const dying = scene.at(0).link('b0.1', 'b0.1/1', 40002);
  scene.at(10).send(5).at(12).receive(dying, 1, 5).at(60).send(5);
  scene.ledger.killed.add('b0.1');
  return scene;
}

const inFlight = (audit: Audit): void => {
  assert.equal(audit.unexplained, 0, audit.unexplainedSample);
  assert.equal(audit.inFlight, 5);
  assert.deepEqual(audit.problems, []);
};

const unexplained = (audit: Audit): void => {
  assert.equal(audit.unexplained, 5);
  assert.equal(audit.inFlight, 0);
};

test('in flight: a link that had just taken the client over and was killed before reporting any of its messages', () => {
  const scene = new Scene();
  scene.ledger.backendStarted('b0.1');
  const audit = around(scene, (s) => {
    s.at(40).link('b0.1', 'b0.1/1', 40002);
    s.ledger.killed.add('b0.1');
    s.at(65).left(40002);
  }).audit();
  inFlight(audit);
  assert.equal(audit.lostLinks, 1);
  assert.equal(audit.unreportedLinks, 0);
});

test('in flight: a link whose backend was killed before it could report the connection', () => {
  const scene = new Scene();
  const audit = around(scene, (s) => {
    s.at(30).ledger.backendStarted('b0.1');
    s.at(40).joined(40002);
    s.ledger.killed.add('b0.1');
    s.at(65).left(40002);
  }).audit();
  inFlight(audit);
  assert.equal(audit.unreportedLinks, 1);
});

test('in flight: the tail of a killed link that had the client, the next message going to the link that replaced it', () => {
  const scene = afterDyingLink().at(65).left(40002);
  inFlight(scene.at(110).send(5).at(112).receive(scene.early, 11, 15).audit());
});

test('lost silently: a gap with no link leaving or joining between its last message and the next report', () => {
  const scene = new Scene();
  scene.ledger.backendStarted('b0.1');
  scene.at(0).link('b0.1', 'b0.1/1', 40002);
  around(scene, (s) => s.ledger.killed.add('b0.1'));
  unexplained(scene.at(500).left(40002).audit());
});

test('lost silently: a killed link left just then, but no link joined or left before to move the client onto it', () => {
  const scene = new Scene();
  scene.ledger.backendStarted('b0.1');
  scene.at(0).link('b0.1', 'b0.1/1', 40002);
  unexplained(
    around(scene, (s) => {
      s.ledger.killed.add('b0.1');
      s.at(65).left(40002);
    }).audit(),
  );
});

test('lost silently: the link that got the message before the gap left long after the next one was reported', () => {
  const scene = afterDyingLink();
  unexplained(scene.at(110).send(5).at(112).receive(scene.early, 11, 15).at(400).left(40002).audit());
});

test('lost silently: a link that stayed up is never where messages were in flight to', () => {
  const scene = new Scene();
  const audit = around(scene, (s) => {
    s.at(40).link('fault.2', 'fault.2', 40002);
    s.at(65).left(40002);
  }).audit();
  unexplained(audit);
});

test('a link in the broker log that no backend killed while connecting accounts for, and a reported link missing from the log, are problems', () => {
  const scene = new Scene();
  scene.at(40).joined(40002).at(65).left(40002);
  const missing = scene.ledger.addLink('b1.1', 'b1.1/1');
  scene.ledger.connected(missing, 40003);
  const audit = around(scene, () => undefined).audit();
  unexplained(audit);
  assert.deepEqual(audit.problems, ["b1.1/1 (port 40003) is not in the broker's log", 'the link from port 40002 is no backend\'s the soak started']);
});
