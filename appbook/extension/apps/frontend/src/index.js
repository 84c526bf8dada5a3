// The browser side of an Appbook app page: connect to the page's kernel, load its widgets,
// show them. Voilà's own front end is a JupyterLab application (about 4 MB of JavaScript
// whose start-up takes most of a second of the browser's main thread); an app page needs
// only a kernel connection and an ipywidgets manager.
//
// The page (template/index.html.j2) carries:
// - <script id="appbook-app-config" type="application/json">: baseUrl, kernelId,
//   kernelName, widgetModules (module name -> URL of its AMD bundle, e.g. bqplot).
// - <script type="application/vnd.jupyter.widget-view+json">{"model_id": ...}</script>
//   where each widget view goes.
// The script is loaded `async` in the head: it connects to the kernel as soon as the kernel
// id is in the page, and loads the widgets once the page has arrived (the cells have run).

import * as base from '@jupyter-widgets/base';
import { ManagerBase } from '@jupyter-widgets/base-manager';
import * as controls from '@jupyter-widgets/controls';
import { KernelConnection } from '@jupyterlab/services/lib/kernel/default';
import * as KernelMessage from '@jupyterlab/services/lib/kernel/messages';
import { ServerConnection } from '@jupyterlab/services/lib/serverconnection';
import { MessageLoop } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

const CONFIG_ID = 'appbook-app-config';
const VIEW_TYPE = 'application/vnd.jupyter.widget-view+json';
const CONTROL_TARGET = 'jupyter.widget.control'; // ipywidgets 8's, for all states at once
const CONTROL_VERSION = '1.0.0';
const BUILTIN = {
  '@jupyter-widgets/base': base,
  '@jupyter-widgets/controls': controls,
};

/** Third-party widget modules (bqplot) as AMD bundles, loaded only when a model needs one. */
class ModuleLoader {
  constructor(urls) {
    this.urls = urls || {};
    this.loaded = new Map();
    this.waiting = new Map();
    const loader = this;
    // The bundles call define([...deps], factory) as they run; document.currentScript
    // tells which module the running bundle is.
    window.define = function define(deps, factory) {
      if (typeof deps === 'function') {
        factory = deps;
        deps = [];
      }
      const script = document.currentScript;
      const name = script && script.dataset.widgetModule;
      const entry = name && loader.waiting.get(name);
      if (!entry) {
        console.warn('appbook: define() outside a widget module bundle ignored');
        return;
      }
      Promise.all(deps.map((dep) => loader.load(dep)))
        .then((modules) => entry.resolve(factory(...modules)))
        .catch(entry.reject);
    };
    window.define.amd = { appbook: true };
  }

  load(name) {
    if (BUILTIN[name]) {
      return Promise.resolve(BUILTIN[name]);
    }
    if (!this.loaded.has(name)) {
      this.loaded.set(name, this._fetch(name));
    }
    return this.loaded.get(name);
  }

  _fetch(name) {
    const url = this.urls[name];
    if (!url) {
      return Promise.reject(new Error(`no widget module ${name} on this server`));
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(name, { resolve, reject });
      const script = document.createElement('script');
      script.src = url;
      script.async = true;
      script.dataset.widgetModule = name;
      script.onerror = () => reject(new Error(`could not load ${url}`));
      document.head.appendChild(script);
    });
  }
}

/** An ipywidgets manager over one kernel connection. */
class AppWidgetManager extends ManagerBase {
  constructor(kernel, modules) {
    super();
    this.kernel = kernel;
    this.modules = modules;
    this.views = new Set();
    window.addEventListener('resize', () => {
      for (const view of this.views) {
        MessageLoop.postMessage(view.luminoWidget, Widget.ResizeMessage.UnknownSize);
      }
    });
  }

  async loadClass(className, moduleName, moduleVersion) {
    const module = await this.modules.load(moduleName);
    if (!module[className]) {
      throw new Error(`class ${className} not found in ${moduleName}@${moduleVersion}`);
    }
    return module[className];
  }

  async _create_comm(targetName, modelId, data, metadata, buffers) {
    const comm = this.kernel.createComm(targetName, modelId);
    if (data || metadata) {
      comm.open(data, metadata, buffers);
    }
    return new base.shims.services.Comm(comm);
  }

  async _get_comm_info() {
    const reply = await this.kernel.requestCommInfo({ target_name: this.comm_target_name });
    return reply.content.status === 'ok' ? reply.content.comms : {};
  }

  /**
   * Load every widget the kernel has, then follow the kernel's changes.
   *
   * The page may connect while its cells still run (a kernel started for the request), so
   * the socket can carry widget messages that reference widgets created before it
   * connected, which this page never saw. Comm messages are therefore ignored until the
   * kernel's snapshot of all widget states (ipywidgets' control comm, `request_states`)
   * arrives; everything the kernel sends after it is followed. The snapshot is asked for
   * with plain shell messages, and read from its reply's iopub message, because the
   * connection's comm handling is off until then; while the models are being made, the
   * connection processes no further message, so no update is lost or applied too early.
   */
  load(timeout = 30000) {
    const kernel = this.kernel;
    const commId = base.uuid();
    const send = (msgType, content, metadata = {}) =>
      kernel.sendShellMessage(
        KernelMessage.createMessage({
          msgType,
          channel: 'shell',
          username: kernel.username,
          session: kernel.clientId,
          content,
          metadata,
        }),
        false,
        true
      );
    const snapshot = new Promise((resolve, reject) => {
      setTimeout(() => reject(new Error('the kernel sent no widget states in time')), timeout);
      send(
        'comm_open',
        { comm_id: commId, target_name: CONTROL_TARGET, data: {} },
        { version: CONTROL_VERSION }
      );
      const future = send('comm_msg', { comm_id: commId, data: { method: 'request_states' } });
      future.onIOPub = (msg) => {
        const { content } = msg;
        if (
          msg.header.msg_type !== 'comm_msg' ||
          content.comm_id !== commId ||
          content.data.method !== 'update_states'
        ) {
          return undefined;
        }
        kernel.handleComms = true; // from the next message on
        kernel.registerCommTarget(this.comm_target_name, (comm, opened) =>
          this.handle_comm_open(new base.shims.services.Comm(comm), opened)
        );
        let made;
        try {
          made = this._fromStates(content.data, msg.buffers || []);
        } catch (error) {
          made = Promise.reject(error);
        }
        made.then(resolve, reject);
        return made.catch(() => undefined); // the connection waits for the models first
      };
    });
    return snapshot.finally(() => send('comm_close', { comm_id: commId, data: {} }));
  }

  /** Models (and their comms) for every widget of an `update_states` message. */
  _fromStates(data, rawBuffers) {
    const buffers = rawBuffers.map((b) =>
      b instanceof DataView ? b : new DataView(b instanceof ArrayBuffer ? b : b.buffer)
    );
    const paths = {};
    const groups = {};
    data.buffer_paths.forEach(([widgetId, ...path], i) => {
      (paths[widgetId] = paths[widgetId] || []).push(path);
      (groups[widgetId] = groups[widgetId] || []).push(buffers[i]);
    });
    // Every new_model call registers its model before any of them awaits, so a model's
    // references to others (a box's children) find them.
    const made = Object.entries(data.states).map(([widgetId, state]) => {
      try {
        if (paths[widgetId]) {
          base.put_buffers(state, paths[widgetId], groups[widgetId]); // paths start at "state"
        }
        const comm = new base.shims.services.Comm(
          this.kernel.createComm(this.comm_target_name, widgetId)
        );
        return this.new_model(
          {
            model_name: state.model_name,
            model_module: state.model_module,
            model_module_version: state.model_module_version,
            model_id: widgetId,
            comm,
          },
          state.state
        ).catch((error) => console.error(`appbook: widget ${widgetId}`, error));
      } catch (error) {
        console.error(`appbook: widget ${widgetId}`, error); // the others still show
        return undefined;
      }
    });
    return Promise.all(made);
  }

  /** Show the view of model ``modelId`` in place of ``placeholder``. */
  async display(modelId, placeholder) {
    const host = document.createElement('div');
    host.className = 'appbook-widget-host';
    placeholder.replaceWith(host);
    let view;
    try {
      const model = await this.get_model(modelId);
      view = await this.create_view(model, {});
    } catch (error) {
      console.error(`appbook: could not show widget ${modelId}`, error);
      const ErrorModel = base.createErrorWidgetModel(error, `Could not show widget ${modelId}`);
      view = new base.ErrorWidgetView({ model: new ErrorModel() });
      view.render();
    }
    Widget.attach(view.luminoWidget, host);
    this.views.add(view);
    view.once('remove', () => this.views.delete(view));
  }
}

/** The page's configuration, or null while its element is missing or still arriving (a
 * streamed page can stop half-way through it: the JSON only parses once complete). */
function readConfig() {
  const node = document.getElementById(CONFIG_ID);
  if (!node) {
    return null;
  }
  try {
    return JSON.parse(node.textContent);
  } catch (error) {
    return null;
  }
}

/** Resolves with the page's configuration once its script element has been parsed. */
function whenConfig() {
  const found = readConfig();
  if (found) {
    return Promise.resolve(found);
  }
  return new Promise((resolve, reject) => {
    const observer = new MutationObserver(() => {
      const config = readConfig();
      if (config) {
        observer.disconnect();
        resolve(config);
      }
    });
    observer.observe(document.documentElement, {
      childList: true,
      subtree: true,
      characterData: true,
    });
    document.addEventListener('DOMContentLoaded', () => {
      observer.disconnect();
      const config = readConfig();
      config ? resolve(config) : reject(new Error('no app configuration in the page'));
    });
  });
}

function whenParsed() {
  if (document.readyState !== 'loading') {
    return Promise.resolve();
  }
  return new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve));
}

function xsrfToken() {
  const match = document.cookie.match('\\b_xsrf=([^;]*)\\b');
  return (match && match[1]) || '';
}

function showProblem(text) {
  const node = document.createElement('div');
  node.className = 'appbook-frontend-problem';
  node.textContent = text;
  document.body.prepend(node);
}

// Milestones on the browser's performance timeline (bench/apps.py reads them).
const mark = (name) => performance.mark(`appbook:${name}`);

async function main() {
  mark('script');
  const config = await whenConfig();
  const serverSettings = ServerConnection.makeSettings({ baseUrl: config.baseUrl });
  const kernel = new KernelConnection({
    model: { id: config.kernelId, name: config.kernelName || 'python3' },
    serverSettings,
    handleComms: false, // until the page has arrived (AppWidgetManager.load)
    // Comms on the main shell, as in Voilà: app kernels run no code for the page, and
    // accept widget messages only (subshell requests are refused).
    commsOverSubshells: 'disabled',
  });
  // The page closing stops its kernel (as Voilà's page does); the server set the _xsrf
  // cookie with the page.
  window.addEventListener('beforeunload', () => {
    const form = new FormData();
    form.append('_xsrf', xsrfToken());
    navigator.sendBeacon(`${config.baseUrl}voila/api/shutdown/${kernel.id}`, form);
    kernel.dispose();
  });
  const manager = new AppWidgetManager(kernel, new ModuleLoader(config.widgetModules));
  window.appbookApp = { kernel, manager };
  kernel.connectionStatusChanged.connect((_, status) => status === 'connected' && mark(status));
  await whenParsed(); // every cell has run: the widgets exist in the kernel
  mark('parsed');
  await manager.load();
  mark('models');
  const places = document.querySelectorAll(`script[type="${VIEW_TYPE}"]`);
  await Promise.all(
    Array.from(places, (place) => manager.display(JSON.parse(place.textContent).model_id, place))
  );
  mark('views');
  document.body.classList.add('appbook-ready');
}

main().catch((error) => {
  console.error('appbook:', error);
  showProblem(`This app could not start: ${error.message || error}`);
});
