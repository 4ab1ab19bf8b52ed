/**
 * One error shape for every response: `{ error: { code, message } }` with a 4xx status for anything
 * the client can fix; 5xx only for our own faults (logged) and overload (503).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { isCodecError } from '../codec/index.js';
import { codecErrorStatus, HttpError } from '../http/http-error.js';
import { JobLostError, JobTimeoutError, OverloadedError, RedisUnavailableError, ShuttingDownError } from '../workers/jobs.js';
import { isRedisConnectionError } from '../infra/redis.js';
import { StoreUnavailableError } from '../store/bitstream-store.js';
import { routeDialect } from '../routes/proxy-flow.js';

export function installErrorHandler(app: FastifyInstance, onError: (code: string) => void): void {
  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    let status = 500;
    let code = 'internal_error';
    let message = 'internal error';
    let details: Record<string, unknown> | undefined;
    if (err instanceof HttpError) {
      ({ status, code, message, details } = err);
    } else if (isCodecError(err)) {
      status = codecErrorStatus(err.code);
      code = err.code;
      message = err.message;
      details = err.details;
    } else if (err instanceof JobTimeoutError) {
      [status, code, message] = [503, 'job_timeout', err.message];
    } else if (err instanceof OverloadedError) {
      [status, code, message] = [503, 'overloaded', err.message];
      void reply.header('retry-after', '1');
    } else if (err instanceof RedisUnavailableError || isRedisConnectionError(err)) {
      [status, code, message] = [
        503,
        'redis_unavailable',
        err instanceof RedisUnavailableError ? err.message : `Redis is unavailable (${err.message}); retry shortly`,
      ];
      void reply.header('retry-after', '2');
    } else if (err instanceof StoreUnavailableError) {
      [status, code, message] = [503, 'store_unavailable', err.message];
      // The reason (down, timed out, credentials refused) is for the operator too.
      req.log.warn({ err: err.cause ?? err }, 'bitstream store unavailable');
      void reply.header('retry-after', '2');
    } else if (err instanceof JobLostError) {
      [status, code, message] = [503, 'job_lost', err.message];
      void reply.header('retry-after', '1');
    } else if (err instanceof ShuttingDownError) {
      [status, code, message] = [503, 'shutting_down', err.message];
    } else if ('validation' in err && err.validation) {
      // A route schema refused the request; name a field it does not know, which AJV leaves out.
      const extra = err.validation.map((v) => v.params?.['additionalProperty']).filter((p): p is string => typeof p === 'string');
      [status, code, message] = [400, 'invalid_request', extra.length ? `${err.message}: ${extra.join(', ')}` : err.message];
    } else if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      code =
        status === 413
          ? 'body_too_large'
          : status === 415
            ? 'unsupported_media_type'
            : /JSON_BODY$/.test(err.code ?? '')
              ? 'invalid_json'
              : 'bad_request';
      message = err.message;
    }
    if (status >= 500 && code === 'internal_error') req.log.error({ err }, 'request failed');
    onError(code);
    // An LVLM API's route answers in that API's error shape, so its SDK raises its usual exception.
    const dialect = routeDialect(req);
    void reply
      .status(status)
      .send(
        dialect ? dialect.errorBody({ status, code, message, details }) : { error: { code, message, ...(details ? { details } : {}) } },
      );
  });
  app.setNotFoundHandler((req, reply) => {
    onError('not_found');
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url}` } });
  });
}
