import { strict as assert } from 'node:assert';
import { CheckView, HEALTH_JSON, ProbeQuery, TEXT, renderProbe, wantsHealthJson } from '../../src/health/render';

const T = '2026-01-01T00:00:00.000Z';
const view = (name: string, ok: boolean, durationMs?: number): CheckView => ({ name, ok, durationMs, time: T, componentType: durationMs === undefined ? 'system' : 'component' });
const q = (o: Partial<ProbeQuery> = {}): ProbeQuery => ({ verbose: false, exclude: [], json: false, ...o });
const passing = [view('child', true), view('shutdown', true), view('ready-http', true, 12)];
const failing = [view('child', true), view('shutdown', false), view('ready-http', false, 2000)];

describe('health: renderer', () => {
  it('all passing: 200 "ok"', () => {
    assert.deepEqual(renderProbe('readyz', passing, q()), { status: 200, contentType: TEXT, body: 'ok' });
  });

  it('?verbose lists every check and the verdict', () => {
    const r = renderProbe('readyz', passing, q({ verbose: true }));
    assert.equal(r.status, 200);
    assert.equal(r.body, '[+]child ok\n[+]shutdown ok\n[+]ready-http ok\nreadyz check passed\n');
  });

  it('a failure is 503 and lists the failing checks, without reasons', () => {
    const r = renderProbe('readyz', failing, q());
    assert.equal(r.status, 503);
    assert.equal(r.body, '[-]shutdown failed\n[-]ready-http failed\nreadyz check failed\n');
  });

  it('a failure with ?verbose lists passing checks too', () => {
    const r = renderProbe('livez', failing, q({ verbose: true }));
    assert.equal(r.body, '[+]child ok\n[-]shutdown failed\n[-]ready-http failed\nlivez check failed\n');
  });

  it('?exclude skips a check: the rest decides, and verbose says it was excluded', () => {
    const one = [view('child', true), view('shutdown', false)];
    assert.deepEqual(renderProbe('readyz', one, q({ exclude: ['shutdown'] })), { status: 200, contentType: TEXT, body: 'ok' });
    const r = renderProbe('readyz', one, q({ exclude: ['shutdown'], verbose: true }));
    assert.equal(r.body, '[+]child ok\n[+]shutdown excluded: ok\nreadyz check passed\n');
  });

  it('excluding an unknown check warns (quoted, bounded) and changes nothing', () => {
    const r = renderProbe('readyz', failing, q({ exclude: ['nope', 'x'.repeat(500)] }));
    assert.equal(r.status, 503);
    assert.match(r.body, /^warn: some health checks cannot be excluded: no matches for "nope", "x{64}…"$/m);
    assert.ok(r.body.length < 400);
  });

  it('application/health+json: IETF draft fields, no reasons', () => {
    const ok = renderProbe('readyz', passing, q({ json: true }));
    assert.equal(ok.status, 200);
    assert.equal(ok.contentType, HEALTH_JSON);
    const body = JSON.parse(ok.body);
    assert.equal(body.status, 'pass');
    assert.equal(body.output, undefined, 'no output on pass');
    assert.deepEqual(Object.keys(body.checks), ['child', 'shutdown', 'ready-http:responseTime']);
    assert.deepEqual(body.checks['ready-http:responseTime'], [{ componentId: 'ready-http', componentType: 'component', status: 'pass', time: T, observedValue: 12, observedUnit: 'ms' }]);
    assert.deepEqual(body.checks.child, [{ componentId: 'child', componentType: 'system', status: 'pass', time: T }]);

    const bad = renderProbe('readyz', failing, q({ json: true, exclude: ['child'] }));
    assert.equal(bad.status, 503);
    const b = JSON.parse(bad.body);
    assert.equal(b.status, 'fail');
    assert.equal(b.output, 'readyz check failed');
    assert.equal(b.checks.child, undefined, 'excluded checks are left out');
    assert.equal(b.checks.shutdown[0].status, 'fail');
  });

  it('Accept negotiation', () => {
    assert.equal(wantsHealthJson('application/health+json'), true);
    assert.equal(wantsHealthJson('text/html, application/health+json;q=0.9'), true);
    assert.equal(wantsHealthJson('Application/Health+JSON'), true);
    assert.equal(wantsHealthJson('application/health+json;q=0'), false);
    assert.equal(wantsHealthJson('*/*'), false);
    assert.equal(wantsHealthJson(undefined), false);
  });
});
