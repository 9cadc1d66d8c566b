/**
 * The banner and the choices dialog: plain DOM, no framework (every byte is downloaded by every
 * visitor). The dialog is a native modal <dialog>: the page behind it is inert, Escape closes it
 * without deciding, and focus is kept inside it and returned to where it was.
 */
import type { BannerControl, BannerTextsOut } from '../banner.contract.js';

/** The minified banner.css, inlined at build time (banner.bundle.ts). */
declare const __PLEDGE_CSS__: string;

/** A purpose as the dialog shows it. */
export interface DialogRow {
  k: string;
  on: boolean;
  /** Turned off by Global Privacy Control: shown, not changeable. */
  locked: boolean;
  /** Said below the description: why it is locked, or that it is on until turned off. */
  note: string | undefined;
}

/** What a button does: accept or reject all, or save the switches (`choices`). */
export type Act = (control: BannerControl, choices?: Record<string, boolean>) => void;

let banner: HTMLElement | undefined;
let styled = false;

function h(tag: string, attrs: Record<string, string>, ...children: Array<Node | string>): HTMLElement {
  const el = document.createElement(tag);
  for (const name in attrs) el.setAttribute(name, attrs[name]!);
  el.append(...children);
  return el;
}

// The three choices are the same element with the same class: equal weight and prominence.
function button(label: string, onClick: () => void): HTMLElement {
  const b = h('button', { type: 'button', class: 'pl-b' }, label);
  b.onclick = onClick;
  return b;
}

// A page whose Content-Security-Policy allows styles by nonce gives it to /pledge.js's tag: the
// script is only the current one while it first runs, so the nonce is read now.
const nonce = (document.currentScript as HTMLScriptElement | null)?.nonce;

function style(): void {
  if (!styled) document.head.append(h('style', nonce ? { nonce } : {}, __PLEDGE_CSS__));
  styled = true;
}

function policyLink(texts: BannerTextsOut, policy: string): HTMLElement {
  return h('a', { href: policy }, texts.policy_link);
}

/** Shows the banner first in the page, so that it is also first in the keyboard's order. */
export function showBanner(
  texts: BannerTextsOut,
  lang: string,
  policy: string,
  act: Act,
  choose: () => void,
): void {
  style();
  hideBanner();
  banner = h(
    'section',
    { class: 'pl pl-banner', lang, 'aria-labelledby': 'pl-t' },
    h('h2', { id: 'pl-t' }, texts.title),
    h('p', {}, texts.text, ' ', policyLink(texts, policy)),
    h(
      'div',
      { class: 'pl-row' },
      button(texts.accept_all, () => act('accept_all')),
      button(texts.reject_all, () => act('reject_all')),
      button(texts.choose, choose),
    ),
  );
  document.body.prepend(banner);
}

/** Removes the banner, if shown. */
export function hideBanner(): void {
  banner?.remove();
  banner = undefined;
}

/** Opens the choices dialog; `act` is called after it closed. */
export function openDialog(
  texts: BannerTextsOut,
  lang: string,
  policy: string,
  rows: DialogRow[],
  act: Act,
): void {
  // One at a time: Pledge.open() while it is open changes nothing. A dialog just closed is removed
  // only by its close event, a task later: one still there is dropped, not taken for an open one.
  const shown = document.querySelector<HTMLDialogElement>('.pl-dialog');
  if (shown?.open) return;
  shown?.remove();
  style();
  const back = document.activeElement as HTMLElement | null;
  const boxes: Array<[string, HTMLInputElement]> = [];
  const items = rows.map(({ k, on, locked, note }, i) => {
    const box = h('input', {
      type: 'checkbox',
      'aria-describedby': note === undefined ? `pl-d${i}` : `pl-d${i} pl-n${i}`,
    }) as HTMLInputElement;
    box.checked = on;
    box.disabled = locked;
    boxes.push([k, box]);
    const [name, description] = texts.purposes[k] ?? [k, ''];
    return h(
      'li',
      {},
      h('label', {}, box, name),
      h('p', { id: `pl-d${i}` }, description),
      ...(note === undefined ? [] : [h('p', { id: `pl-n${i}` }, note)]),
    );
  });
  const done = (control: BannerControl) => () => {
    dialog.close();
    act(control, Object.fromEntries(boxes.map(([k, box]) => [k, box.checked])));
  };
  const dialog = h(
    'dialog',
    { class: 'pl pl-dialog', lang, 'aria-modal': 'true', 'aria-labelledby': 'pl-dt' },
    h('h2', { id: 'pl-dt' }, texts.dialog_title),
    h('ul', {}, ...items),
    h('p', {}, policyLink(texts, policy)),
    h(
      'div',
      { class: 'pl-row' },
      button(texts.accept_all, done('accept_all')),
      button(texts.reject_all, done('reject_all')),
      button(texts.save, done('choose')),
    ),
  ) as HTMLDialogElement;
  // A modal dialog makes the page inert, but Tab would still leave it for the browser's own UI.
  dialog.onkeydown = (e) => {
    if (e.key !== 'Tab') return;
    const all = [...dialog.querySelectorAll<HTMLElement>('a,button,input:enabled')];
    const i = all.indexOf(document.activeElement as HTMLElement);
    const to = e.shiftKey
      ? i > 0
        ? undefined
        : all[all.length - 1]
      : i === all.length - 1
        ? all[0]
        : undefined;
    if (to) {
      e.preventDefault();
      to.focus();
    }
  };
  // Escape closes it too (the native cancel): nothing is decided, focus goes back.
  dialog.onclose = () => {
    dialog.remove();
    // Not while a dialog opened since holds the focus.
    if (back?.isConnected && !document.querySelector('.pl-dialog[open]')) back.focus();
  };
  document.body.append(dialog);
  dialog.showModal();
}
