import { useState } from 'preact/hooks';
import { dateTime } from '../../lib/format';
import { Field, FormAlert, formErrors, LoadState, NO_ERRORS, Outcome, sendJson, useConfirm, useLoad, type FormErrors } from './common';

/** Users and roles (users:manage): list, create, edit role / name / credentials, disable, reset a password. */

const ROLES = ['admin', 'radiologist', 'technician', 'viewer', 'service'] as const;

interface UserView {
  id: number;
  username: string;
  role: string;
  full_name: string | null;
  credentials: string | null;
  display_name: string;
  active: boolean;
  last_login_at?: string | null;
}

type Panel = { kind: 'create' } | { kind: 'edit'; user: UserView } | { kind: 'password'; user: UserView } | null;

export function UsersSection() {
  const res = useLoad<{ items: UserView[] }>('/api/users', 'list the users');
  const [panel, setPanel] = useState<Panel>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const [confirm, dialog] = useConfirm();

  const done = (text: string) => {
    setPanel(null);
    setNotice(text);
    void res.reload();
  };
  const setActive = async (u: UserView, active: boolean) => {
    setFailure(null);
    if (!active && !(await confirm(`Disable ${u.username}? They can no longer sign in, and their tokens are refused.`, 'Disable user')))
      return;
    try {
      await sendJson(`/api/users/${u.id}`, 'PATCH', { active });
      done(`${u.username} ${active ? 'enabled' : 'disabled'}.`);
    } catch (err) {
      setFailure(formErrors(err, 'change the user').form);
    }
  };

  return (
    <div>
      <div class="section-actions">
        <button type="button" onClick={() => (setNotice(null), setPanel({ kind: 'create' }))}>
          New user
        </button>
      </div>
      <Outcome notice={notice} failure={failure} />
      {panel?.kind === 'create' && <UserForm onDone={done} onCancel={() => setPanel(null)} />}
      {panel?.kind === 'edit' && <UserForm user={panel.user} onDone={done} onCancel={() => setPanel(null)} />}
      {panel?.kind === 'password' && <PasswordForm user={panel.user} onDone={done} onCancel={() => setPanel(null)} />}
      <LoadState res={res} what="the users">
        {(d) =>
          d.items.length === 0 ? (
            <p class="empty">No users yet.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid">
                <caption class="sr-only">Users</caption>
                <thead>
                  <tr>
                    <th scope="col">Username</th>
                    <th scope="col">Name</th>
                    <th scope="col">Role</th>
                    <th scope="col">State</th>
                    <th scope="col">Last sign-in</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.items.map((u) => (
                    <tr key={u.id} data-user={u.username}>
                      <td>{u.username}</td>
                      <td>{u.display_name}</td>
                      <td>{u.role}</td>
                      <td>
                        <span class={`badge ${u.active ? 'ok' : 'danger'}`}>{u.active ? 'active' : 'disabled'}</span>
                      </td>
                      <td>{dateTime(u.last_login_at) || '—'}</td>
                      <td class="row-actions">
                        <button
                          type="button"
                          class="secondary"
                          aria-label={`Edit ${u.username}`}
                          onClick={() => (setNotice(null), setPanel({ kind: 'edit', user: u }))}
                        >
                          Edit
                        </button>
                        <button
                          type="button"
                          class="secondary"
                          aria-label={`Reset password of ${u.username}`}
                          onClick={() => (setNotice(null), setPanel({ kind: 'password', user: u }))}
                        >
                          Reset password
                        </button>
                        <button
                          type="button"
                          class={u.active ? 'danger' : 'secondary'}
                          aria-label={`${u.active ? 'Disable' : 'Enable'} ${u.username}`}
                          onClick={() => void setActive(u, !u.active)}
                        >
                          {u.active ? 'Disable' : 'Enable'}
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </LoadState>
      {dialog}
    </div>
  );
}

function UserForm({ user, onDone, onCancel }: { user?: UserView; onDone: (t: string) => void; onCancel: () => void }) {
  const [v, setV] = useState({
    username: user?.username ?? '',
    password: '',
    role: user?.role ?? 'radiologist',
    full_name: user?.full_name ?? '',
    credentials: user?.credentials ?? '',
  });
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);
  const bind = (k: keyof typeof v) => ({
    value: v[k],
    onInput: (e: Event) => setV({ ...v, [k]: (e.currentTarget as HTMLInputElement).value }),
  });

  const submit = async (e: Event) => {
    e.preventDefault();
    const fields: Record<string, string> = {};
    if (!user && v.username.trim().length < 3) fields.username = 'At least 3 characters.';
    if (!user && v.password.length < 10) fields.password = 'At least 10 characters.';
    if (Object.keys(fields).length) return setErrors({ fields, form: 'Check the fields marked below.' });
    setBusy(true);
    try {
      if (user) {
        await sendJson(`/api/users/${user.id}`, 'PATCH', { role: v.role, full_name: v.full_name, credentials: v.credentials });
        onDone(`${user.username} saved.`);
      } else {
        await sendJson('/api/users', 'POST', {
          username: v.username.trim(),
          password: v.password,
          role: v.role,
          ...(v.full_name.trim() ? { full_name: v.full_name.trim() } : {}),
          ...(v.credentials.trim() ? { credentials: v.credentials.trim() } : {}),
        });
        onDone(`User ${v.username.trim()} created.`);
      }
    } catch (err) {
      setErrors(formErrors(err, user ? 'save the user' : 'create the user'));
    } finally {
      setBusy(false);
    }
  };

  const title = user ? `Edit ${user.username}` : 'New user';
  return (
    <form class="panel" onSubmit={submit} aria-label={title} noValidate>
      <h3>{title}</h3>
      <FormAlert errors={errors} />
      <div class="form-grid">
        {!user && (
          <>
            <Field id="u-username" label="Username" error={errors.fields.username} hint="Letters, digits and . _ @ -">
              {(a) => <input {...a} autoComplete="off" required maxLength={64} {...bind('username')} />}
            </Field>
            <Field id="u-password" label="Password" error={errors.fields.password} hint="At least 10 characters">
              {(a) => <input {...a} type="password" autoComplete="new-password" required {...bind('password')} />}
            </Field>
          </>
        )}
        <Field id="u-role" label="Role" error={errors.fields.role}>
          {(a) => (
            <select {...a} {...bind('role')}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field id="u-name" label="Full name" error={errors.fields.full_name}>
          {(a) => <input {...a} maxLength={128} {...bind('full_name')} />}
        </Field>
        <Field id="u-credentials" label="Credentials" error={errors.fields.credentials} hint="e.g. MD, shown after the name">
          {(a) => <input {...a} maxLength={64} {...bind('credentials')} />}
        </Field>
      </div>
      <div class="actions">
        <button type="submit" disabled={busy}>
          {user ? 'Save' : 'Create user'}
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function PasswordForm({ user, onDone, onCancel }: { user: UserView; onDone: (t: string) => void; onCancel: () => void }) {
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (password.length < 10) return setErrors({ fields: { password: 'At least 10 characters.' }, form: 'Check the fields marked below.' });
    try {
      await sendJson(`/api/users/${user.id}/password`, 'POST', { password });
      onDone(`The password of ${user.username} was reset.`);
    } catch (err) {
      setErrors(formErrors(err, 'reset the password'));
    }
  };
  return (
    <form class="panel" onSubmit={submit} aria-label={`Reset the password of ${user.username}`} noValidate>
      <h3>Reset the password of {user.username}</h3>
      <FormAlert errors={errors} />
      <Field id="u-new-password" label="New password" error={errors.fields.password} hint="At least 10 characters">
        {(a) => (
          <input
            {...a}
            type="password"
            autoComplete="new-password"
            value={password}
            onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)}
          />
        )}
      </Field>
      <div class="actions">
        <button type="submit">Reset password</button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
