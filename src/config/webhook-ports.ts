import { defaultCallbackPorts, type CallbackPorts } from '../validate/callback-url.ts';

/**
 * WEBHOOK_PORTS as the env schema let it through ("any" or a list of up to 64 numbers); unset:
 * defaultCallbackPorts. `issues` names a port out of range.
 */
export function callbackPorts(
  raw: string | undefined,
  allowPrivate: boolean,
): { ports: CallbackPorts; issues: string[] } {
  if (raw === undefined) return { ports: defaultCallbackPorts(allowPrivate), issues: [] };
  if (raw === 'any') return { ports: 'any', issues: [] };
  const ports = raw.split(',').map((p) => Number(p.trim()));
  const bad = ports.filter((p) => !Number.isInteger(p) || p < 1 || p > 65535);
  if (bad.length > 0)
    return { ports: new Set(), issues: [`WEBHOOK_PORTS: ${bad.join(', ')} is not a port from 1 to 65535`] };
  return { ports: new Set(ports), issues: [] };
}
