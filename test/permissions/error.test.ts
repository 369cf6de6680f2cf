import { describe, expect, it } from 'vitest';
import { call, useApp } from '../helper.js';

describe('permission decisions: client mistakes', () => {
  const t = useApp();

  it('bad decisions are 4xx: unknown request, wrong body', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const unknown = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/2f0c6c8e-1111-4222-8333-444455556666`, { behavior: 'allow' });
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'PERMISSION_REQUEST_NOT_FOUND']);
    const bad = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/2f0c6c8e-1111-4222-8333-444455556666`, { behavior: 'maybe' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'INVALID_REQUEST']);
    const notUuid = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/abc`, { behavior: 'allow' });
    expect(notUuid.status).toBe(400);
  });
});
