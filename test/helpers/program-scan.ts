/**
 * Finds every external program the sources run, for the manifest check (scripts/programs.tsv).
 *
 * Works on the TypeScript syntax tree, not on text: a call to a child_process function (imported,
 * destructured from a dynamic import, or promisified) gives an argv template; a function that passes
 * one of its parameters into such an argv becomes a spawner itself (found by name across all files,
 * to a fixed point), so `inNetns(ns, 'nft', [...])`, `d.exec(sb, ['ping', ...])` or `this.exec(ns,
 * ['sysctl', ...])` count too. Strings resolve through constants, `this.field` assignments, ternaries,
 * spreads and functions that return an argv. Each concrete argv is then unwrapped the way the
 * programs themselves do: `nsenter [opts] CMD`, `ip netns exec NS CMD`, `unshare [opts] CMD`,
 * `env`/`timeout`/`setsid`/`setpriv CMD`, `cnm exec SB -- CMD`, and `sh|bash -c SCRIPT` is parsed as shell
 * (pipes, lists, `$(...)`, keywords, assignments, redirections, builtins).
 */
import ts from 'typescript';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** One argv word: known text (may hold \0 where a template had a substitution), or unknown. */
type Item = { kind: 'lit'; text: string } | { kind: 'param'; fn: ts.Node; index: number; spread: boolean } | { kind: 'unknown'; spread: boolean };
type Template = Item[];

export interface ScanResult {
  /** program → sites (file:line) that run it */
  programs: Map<string, Set<string>>;
  /** shared libraries loaded with koffi.load → sites */
  libraries: Map<string, Set<string>>;
  /** child_process calls whose command could not be resolved (file:line + source text) */
  unresolved: string[];
}

const BUILTIN_SPAWNERS = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync']);
const SHELL_BUILTINS = new Set([
  'cd', 'echo', 'exit', 'read', 'printf', 'test', '[', '[[', 'true', 'false', 'set', 'export', 'local', 'return', 'wait',
  'trap', 'eval', 'shift', 'source', '.', ':', 'let', 'declare', 'unset', 'type', 'ulimit', 'umask', 'kill', 'alias', 'getopts', 'break', 'continue',
]);
const SHELL_KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', 'esac', '!', '{', '}', 'time']);
const MAX_ALTERNATIVES = 32;
const FILE_CALLS = new Set(['copyFile', 'copyFileSync', 'existsSync', 'statSync', 'stat', 'lstat', 'lstatSync', 'access', 'accessSync', 'readFile', 'readFileSync', 'realpath', 'realpathSync']);
const BIN_PATH = /^\/(usr\/)?(local\/)?s?bin\/[\w.+-]+$/;

export function listSourceFiles(root: string, dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      if (entry === 'node_modules' || entry === 'results' || entry === 'golden') continue;
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|mts|mjs|js)$/.test(entry) && !entry.endsWith('.d.ts')) out.push(path);
    }
  };
  for (const d of dirs) walk(join(root, d));
  return out.sort();
}

export function scanPrograms(root: string, files: { path: string; text?: string }[]): ScanResult {
  const sources = files.map((f) => ts.createSourceFile(f.path, f.text ?? readFileSync(f.path, 'utf8'), ts.ScriptTarget.Latest, true));
  const wrappers = new Map<string, Map<string, { fn: ts.Node; template: Template }>>();
  const result: ScanResult = { programs: new Map(), libraries: new Map(), unresolved: [] };
  const site = (n: ts.Node) => `${relative(root, n.getSourceFile().fileName)}:${n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  const add = (map: Map<string, Set<string>>, key: string, where: string) => {
    if (!map.has(key)) map.set(key, new Set());
    map.get(key)!.add(where);
  };

  for (let round = 0; round < 8; round++) {
    const before = [...wrappers.values()].reduce((n, m) => n + m.size, 0);
    const unresolved: string[] = [];
    for (const sf of sources) {
      const builtins = childProcessNames(sf);
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node)) {
          const templates = callTemplates(node, builtins, sf, wrappers);
          if (isBuiltinCall(node, builtins) && !templates.some((t) => t[0]?.kind === 'lit' || t[0]?.kind === 'param' || t.some((i) => i.kind === 'param'))) {
            unresolved.push(`${site(node)}: ${node.getText().slice(0, 120)}`);
          }
          for (const t of templates) {
            const fn = t.find((i): i is Extract<Item, { kind: 'param' }> => i.kind === 'param')?.fn;
            if (fn) {
              const name = functionName(fn);
              if (name) {
                if (!wrappers.has(name)) wrappers.set(name, new Map());
                wrappers.get(name)!.set(JSON.stringify(t.map((i) => (i.kind === 'param' ? { ...i, fn: undefined } : i))), { fn, template: t });
              }
            }
            const words = t.flatMap((i) => (i.kind === 'lit' ? [i.text] : i.spread ? [SPREAD] : [null]));
            for (const p of programsOfArgv(words)) add(result.programs, p, site(node));
          }
        }
        // a binary named by its path and read or checked (copied into an image, tested for): a use too
        if (ts.isCallExpression(node) && FILE_CALLS.has(calleeName(node) ?? '')) {
          const first = node.arguments[0];
          if (first && (ts.isStringLiteral(first) || ts.isNoSubstitutionTemplateLiteral(first)) && BIN_PATH.test(first.text)) {
            add(result.programs, first.text.split('/').pop()!, site(node));
          }
        }
        // shared libraries are loaded by soname (koffi.load, or a default path handed to it)
        if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && /^(\/[\w./-]*\/)?lib[\w+-]+\.so(\.\d+)*$/.test(node.text)) {
          add(result.libraries, node.text.split('/').pop()!, site(node));
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    result.unresolved = unresolved;
    const after = [...wrappers.values()].reduce((n, m) => n + m.size, 0);
    if (after === before && round > 0) break;
  }
  return result;
}

const SPREAD = '\u0001spread';

/** Local names bound to child_process functions (imports, dynamic-import destructuring, promisify). */
function childProcessNames(sf: ts.SourceFile): Map<string, string> {
  const names = new Map<string, string>();
  const fromChildProcess = (spec: string) => spec === 'node:child_process' || spec === 'child_process';
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier) && fromChildProcess(node.moduleSpecifier.text)) {
      const b = node.importClause?.namedBindings;
      if (b && ts.isNamedImports(b)) for (const el of b.elements) names.set(el.name.text, (el.propertyName ?? el.name).text);
      if (b && ts.isNamespaceImport(b)) names.set(`${b.name.text}.*`, '*');
      if (node.importClause?.name) names.set(`${node.importClause.name.text}.*`, '*');
    }
    if (ts.isVariableDeclaration(node) && node.initializer) {
      const init = node.initializer.getText();
      if (ts.isObjectBindingPattern(node.name) && /import\(\s*['"](node:)?child_process['"]\s*\)|require\(/.test(init)) {
        for (const el of node.name.elements) {
          if (ts.isIdentifier(el.name)) names.set(el.name.text, el.propertyName && ts.isIdentifier(el.propertyName) ? el.propertyName.text : el.name.text);
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  // promisify(x) of a child_process function behaves like it.
  const promisified = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && ts.isCallExpression(node.initializer)) {
      const c = node.initializer;
      if (c.expression.getText() === 'promisify' && c.arguments[0] && names.has(c.arguments[0].getText())) names.set(node.name.text, names.get(c.arguments[0].getText())!);
    }
    ts.forEachChild(node, promisified);
  };
  promisified(sf);
  for (const [local, original] of names) if (original !== '*' && !BUILTIN_SPAWNERS.has(original)) names.delete(local);
  return names;
}

function builtinKind(call: ts.CallExpression, builtins: Map<string, string>): string | undefined {
  const e = call.expression;
  if (ts.isIdentifier(e)) return builtins.get(e.text);
  if (ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression) && builtins.has(`${e.expression.text}.*`) && BUILTIN_SPAWNERS.has(e.name.text)) return e.name.text;
  return undefined;
}

function isBuiltinCall(call: ts.CallExpression, builtins: Map<string, string>): boolean {
  return builtinKind(call, builtins) !== undefined;
}

function calleeName(call: ts.CallExpression): string | undefined {
  const e = call.expression;
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

function functionName(fn: ts.Node): string | undefined {
  if ((ts.isFunctionDeclaration(fn) || ts.isMethodDeclaration(fn)) && fn.name && ts.isIdentifier(fn.name)) return fn.name.text;
  const p = fn.parent;
  if (p && ts.isVariableDeclaration(p) && ts.isIdentifier(p.name)) return p.name.text;
  if (p && ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return p.name.text;
  return undefined;
}

function isFunctionLike(n: ts.Node): n is ts.FunctionLikeDeclaration {
  return ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n) || ts.isConstructorDeclaration(n);
}

/** The argv templates a call runs (full argv, command first); empty when it runs nothing. */
function callTemplates(
  call: ts.CallExpression,
  builtins: Map<string, string>,
  sf: ts.SourceFile,
  wrappers: Map<string, Map<string, { fn: ts.Node; template: Template }>>,
): Template[] {
  const kind = builtinKind(call, builtins);
  const [a0, a1] = call.arguments;
  if (kind === 'exec' || kind === 'execSync') return a0 ? alternatives(a0, sf).map((script) => [lit('sh'), lit('-c'), ...script]) : [];
  if (kind) {
    if (!a0) return [];
    // spawn(argv[0], argv.slice(1)): the whole of argv
    const head = skipWrappers(a0);
    if (ts.isElementAccessExpression(head) && head.argumentExpression.getText() === '0') return alternatives(head.expression, sf, true);
    const cmds = alternatives(a0, sf);
    const argvs = a1 && !ts.isObjectLiteralExpression(a1) ? alternatives(a1, sf, true) : [[]];
    return cross(cmds, argvs);
  }
  const name = calleeName(call);
  const known = name ? wrappers.get(name) : undefined;
  if (!known) return [];
  const out: Template[] = [];
  for (const { fn, template } of known.values()) {
    if (!mayCall(call, fn, sf)) continue;
    const params = (fn as ts.FunctionLikeDeclaration).parameters;
    // an argv parameter given one string is another function of the same name (a script runner, say)
    if (template.some((i) => i.kind === 'param' && i.spread && isStringy(call.arguments[i.index]))) continue;
    let acc: Template[] = [[]];
    for (const item of template) {
      if (item.kind !== 'param') {
        acc = acc.map((t) => [...t, item]);
        continue;
      }
      const param = params[item.index];
      const args = param?.dotDotDotToken ? call.arguments.slice(item.index) : call.arguments[item.index] ? [call.arguments[item.index]!] : [];
      if (args.length === 0) {
        acc = acc.map((t) => [...t, { kind: 'unknown', spread: item.spread }]);
        continue;
      }
      for (const arg of args) acc = cross(acc, alternatives(arg, sf, item.spread));
    }
    out.push(...acc);
  }
  return out.slice(0, MAX_ALTERNATIVES);
}

/**
 * Whether a call by this name can reach this function: a plain call reaches a function of its own file
 * (or, when the name is imported, a function of another file); `this.f()` a method of its own file;
 * `x.f()` any method or object-literal member called f.
 */
function mayCall(call: ts.CallExpression, fn: ts.Node, sf: ts.SourceFile): boolean {
  const member = ts.isMethodDeclaration(fn) || (fn.parent !== undefined && ts.isPropertyAssignment(fn.parent));
  const sameFile = fn.getSourceFile() === sf;
  const e = call.expression;
  if (ts.isIdentifier(e)) {
    if (member) return false;
    if (sameFile) return true;
    return !functionDeclared(e.text, sf) && importsName(sf, e.text);
  }
  if (ts.isPropertyAccessExpression(e) && e.expression.kind === ts.SyntaxKind.ThisKeyword) return member && sameFile;
  return member;
}

function importsName(sf: ts.SourceFile, name: string): boolean {
  return sf.statements.some(
    (st) => ts.isImportDeclaration(st) && st.importClause?.namedBindings !== undefined && ts.isNamedImports(st.importClause.namedBindings) &&
      st.importClause.namedBindings.elements.some((el) => el.name.text === name),
  );
}

function isStringy(e: ts.Expression | undefined): boolean {
  return e !== undefined && (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e) || ts.isTemplateExpression(e));
}

function lit(text: string): Item {
  return { kind: 'lit', text };
}

function cross(a: Template[], b: Template[]): Template[] {
  const out: Template[] = [];
  for (const x of a) for (const y of b) if (out.length < MAX_ALTERNATIVES) out.push([...x, ...y]);
  return out;
}

function skipWrappers(e: ts.Expression): ts.Expression {
  while (ts.isNonNullExpression(e) || ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
  return e;
}

/**
 * What an expression can be, as argv items. `spread` says the expression stands for several words (an
 * array); otherwise it is one word.
 */
function alternatives(expr: ts.Expression, sf: ts.SourceFile, spread = false, depth = 0): Template[] {
  const e = skipWrappers(expr);
  const unknown: Template[] = [[{ kind: 'unknown', spread }]];
  if (depth > 10) return unknown;
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return [[lit(e.text)]];
  if (ts.isTemplateExpression(e)) return [[lit(e.head.text + e.templateSpans.map((s) => `\0${s.literal.text}`).join(''))]];
  if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    // string concatenation: known only when both sides are
    const l = alternatives(e.left, sf, false, depth + 1);
    const r = alternatives(e.right, sf, false, depth + 1);
    return l.flatMap((x) => r.map((y) => [x[0]?.kind === 'lit' && y[0]?.kind === 'lit' ? lit(x[0].text + y[0].text) : { kind: 'unknown' as const, spread: false }]));
  }
  if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
    return [...alternatives(e.left, sf, spread, depth + 1), ...alternatives(e.right, sf, spread, depth + 1)].slice(0, MAX_ALTERNATIVES);
  }
  if (ts.isConditionalExpression(e)) return [...alternatives(e.whenTrue, sf, spread, depth + 1), ...alternatives(e.whenFalse, sf, spread, depth + 1)].slice(0, MAX_ALTERNATIVES);
  if (ts.isPropertyAccessExpression(e) && e.getText() === 'process.execPath') return [[lit('node')]];
  if (ts.isArrayLiteralExpression(e)) {
    let acc: Template[] = [[]];
    for (const el of e.elements) {
      acc = ts.isSpreadElement(el) ? cross(acc, alternatives(el.expression, sf, true, depth + 1)) : cross(acc, alternatives(el, sf, false, depth + 1));
    }
    return acc;
  }
  if (ts.isIdentifier(e)) {
    const param = paramOf(e);
    if (param) return [[{ kind: 'param', fn: param.fn, index: param.index, spread }]];
    const values = valuesOf(e, sf);
    if (values.length === 0) return unknown;
    return values.flatMap((v) => alternatives(v, sf, spread, depth + 1)).slice(0, MAX_ALTERNATIVES);
  }
  if (ts.isPropertyAccessExpression(e) && e.expression.kind === ts.SyntaxKind.ThisKeyword) {
    const values = thisFieldValues(e.name.text, sf);
    if (values.length === 0) return unknown;
    return values.flatMap((v) => alternatives(v, sf, spread, depth + 1)).slice(0, MAX_ALTERNATIVES);
  }
  if (ts.isCallExpression(e) && ['join', 'resolve'].includes(e.expression.getText().replace(/^path\./, ''))) {
    // path.join(REPO, 'bin/cnm'): the program is the last part
    const last = e.arguments[e.arguments.length - 1];
    if (last && (ts.isStringLiteral(last) || ts.isNoSubstitutionTemplateLiteral(last))) return [[lit(last.text)]];
    return unknown;
  }
  if (ts.isCallExpression(e) && ts.isIdentifier(e.expression)) {
    // a function of this file that returns an argv: its return values, parameters filled in
    const fn = functionDeclared(e.expression.text, sf);
    if (fn?.body) {
      const outs: Template[] = [];
      for (const r of returns(fn.body)) {
        for (const t of alternatives(r, sf, spread, depth + 1)) {
          let acc: Template[] = [[]];
          for (const item of t) {
            if (item.kind === 'param' && item.fn === fn) {
              const arg = e.arguments[item.index];
              acc = cross(acc, arg ? alternatives(arg, sf, item.spread, depth + 1) : [[{ kind: 'unknown', spread: item.spread }]]);
            } else acc = acc.map((x) => [...x, item]);
          }
          outs.push(...acc);
        }
      }
      if (outs.length > 0) return outs.slice(0, MAX_ALTERNATIVES);
    }
  }
  return unknown;
}

function paramOf(id: ts.Identifier): { fn: ts.Node; index: number } | undefined {
  for (let n: ts.Node | undefined = id.parent; n; n = n.parent) {
    if (!isFunctionLike(n)) continue;
    const index = n.parameters.findIndex((p) => ts.isIdentifier(p.name) && p.name.text === id.text);
    if (index >= 0) return { fn: n, index };
    if (declaresLocal(n, id.text)) return undefined;
  }
  return undefined;
}

function declaresLocal(fn: ts.FunctionLikeDeclaration, name: string): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found || (n !== fn && isFunctionLike(n))) return;
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name) found = true;
    ts.forEachChild(n, visit);
  };
  if (fn.body) visit(fn.body);
  return found;
}

/** Initializers and assignments of a variable, from the innermost scope that declares it. */
function valuesOf(id: ts.Identifier, sf: ts.SourceFile): ts.Expression[] {
  let scope: ts.Node = sf;
  for (let n: ts.Node | undefined = id.parent; n; n = n.parent) {
    if ((isFunctionLike(n) && declaresLocal(n, id.text)) || ts.isSourceFile(n)) {
      scope = n;
      break;
    }
  }
  const out: ts.Expression[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === id.text && n.initializer) out.push(n.initializer);
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isIdentifier(n.left) && n.left.text === id.text) {
      // `argv = [..., ...argv]`: the new value wraps the old ones
      out.push(n.right);
    }
    ts.forEachChild(n, visit);
  };
  visit(scope);
  return out;
}

function thisFieldValues(field: string, sf: ts.SourceFile): ts.Expression[] {
  const out: ts.Expression[] = [];
  const visit = (n: ts.Node): void => {
    if (
      ts.isBinaryExpression(n) &&
      n.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
      ts.isPropertyAccessExpression(n.left) &&
      n.left.expression.kind === ts.SyntaxKind.ThisKeyword &&
      n.left.name.text === field
    ) {
      out.push(n.right);
    }
    if (ts.isPropertyDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === field && n.initializer) out.push(n.initializer);
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function functionDeclared(name: string, sf: ts.SourceFile): ts.FunctionLikeDeclaration | undefined {
  let found: ts.FunctionLikeDeclaration | undefined;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isFunctionDeclaration(n) && n.name?.text === name) found = n;
    else if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name && n.initializer && (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer))) found = n.initializer;
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

function returns(body: ts.Node): ts.Expression[] {
  if (!ts.isBlock(body)) return [body as ts.Expression];
  const out: ts.Expression[] = [];
  const visit = (n: ts.Node): void => {
    if (isFunctionLike(n)) return;
    if (ts.isReturnStatement(n) && n.expression) out.push(n.expression);
    ts.forEachChild(n, visit);
  };
  ts.forEachChild(body, visit);
  return out;
}

// ---- argv and shell: which programs a command line runs ----

type Word = string | null; // null: unknown; SPREAD: unknown number of unknown words

const OPTION_VALUES: Record<string, string[]> = {
  nsenter: ['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-w', '-r'],
  unshare: ['--propagation', '-S', '--setuid', '-G', '--setgid', '-R', '--root', '-w', '--wd', '--map-user', '--map-group', '--kill-child'],
  timeout: ['-s', '--signal', '-k', '--kill-after'],
  env: ['-u', '--unset', '-C', '--chdir'],
  setsid: [],
  setpriv: ['--reuid', '--regid', '--ruid', '--euid', '--rgid', '--egid', '--groups', '--inh-caps', '--ambient-caps', '--bounding-set', '--securebits', '--pdeathsig'],
  nohup: [],
  sudo: ['-u', '-g'],
  xargs: ['-n', '-I', '-P', '-d', '-L', '-s', '-a', '-E'],
};

/** The programs an argv runs, itself and whatever it runs in turn. */
export function programsOfArgv(words: Word[]): string[] {
  const out = new Set<string>();
  runs(words, out, 0);
  return [...out];
}

function skipOptions(words: Word[], withValue: string[]): Word[] {
  let i = 0;
  while (i < words.length) {
    const w = words[i];
    if (w === '--') return words.slice(i + 1);
    if (typeof w !== 'string' || !w.startsWith('-') || w === SPREAD) break;
    i += withValue.includes(w) ? 2 : 1;
  }
  return words.slice(i);
}

function runs(words: Word[], out: Set<string>, depth: number): void {
  if (depth > 8 || words.length === 0) return;
  const first = words[0];
  if (typeof first !== 'string' || first === SPREAD || first.includes('\0')) return;
  const name = first.split('/').pop()!;
  const rest = words.slice(1);
  if (name === 'node' || name === 'cnm' || name === 'tsx') {
    // node/cnm CLI: `cnm exec SANDBOX -- CMD...` runs CMD; other node scripts run nothing here
    const exec = rest.indexOf('exec');
    const dash = exec >= 0 ? rest.indexOf('--', exec) : -1;
    if (dash >= 0) runs(rest.slice(dash + 1), out, depth + 1);
    if (name !== 'node' && name !== 'tsx') out.add(name);
    return;
  }
  out.add(name);
  if (name in OPTION_VALUES) {
    let next = skipOptions(rest, OPTION_VALUES[name]!);
    if (name === 'env') while (typeof next[0] === 'string' && /^\w+=/.test(next[0])) next = next.slice(1);
    if (name === 'timeout') next = next.slice(1); // the duration
    runs(next, out, depth + 1);
  } else if (name === 'ip') {
    const i = rest.findIndex((w, k) => w === 'netns' && rest[k + 1] === 'exec');
    if (i >= 0) runs(rest.slice(i + 3), out, depth + 1);
  } else if (name === 'sh' || name === 'bash' || name === 'dash') {
    const c = rest.findIndex((w) => typeof w === 'string' && /^-[a-z]*c[a-z]*$/.test(w));
    const script = c >= 0 ? rest[c + 1] : undefined;
    if (typeof script === 'string' && script !== SPREAD) for (const cmd of shellCommands(script)) runs(cmd, out, depth + 1);
  }
}

/** The simple commands of a shell script, as words (\0 marks an unknown part). */
export function shellCommands(script: string): Word[][] {
  const commands: Word[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = () => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = () => {
    endWord();
    if (words.length > 0) commands.push(simpleCommand(words));
    words = [];
  };
  for (let i = 0; i < script.length; i++) {
    const ch = script[i]!;
    if (ch === "'") {
      const end = script.indexOf("'", i + 1);
      word += script.slice(i + 1, end < 0 ? undefined : end);
      inWord = true;
      i = end < 0 ? script.length : end;
    } else if (ch === '"') {
      let j = i + 1;
      let text = '';
      while (j < script.length && script[j] !== '"') {
        if (script[j] === '\\') j++;
        else if (script[j] === '$' && /[\w@*#?$!{-]/.test(script[j + 1] ?? '')) {
          text += '\0';
          if (script[j + 1] === '{') j = Math.max(j, script.indexOf('}', j));
          else if (/[@*#?$!0-9-]/.test(script[j + 1]!)) j++;
          else while (/\w/.test(script[j + 1] ?? '')) j++;
        } else if (script[j] === '$' && script[j + 1] === '(') {
          // a command substitution inside double quotes
          const close = matchParen(script, j + 1);
          commands.push(...shellCommands(script.slice(j + 2, close)));
          text += '\0';
          j = close;
        } else text += script[j];
        j++;
      }
      word += text;
      inWord = true;
      i = j;
    } else if (ch === '\\') {
      word += script[i + 1] ?? '';
      inWord = true;
      i++;
    } else if (ch === '$' && script[i + 1] === '(' && script[i + 2] !== '(') {
      const close = matchParen(script, i + 1);
      commands.push(...shellCommands(script.slice(i + 2, close)));
      word += '\0';
      inWord = true;
      i = close;
    } else if (ch === '`') {
      const end = script.indexOf('`', i + 1);
      commands.push(...shellCommands(script.slice(i + 1, end < 0 ? undefined : end)));
      word += '\0';
      inWord = true;
      i = end < 0 ? script.length : end;
    } else if (ch === '$') {
      word += '\0';
      inWord = true;
      if (script[i + 1] === '{') i = Math.max(i, script.indexOf('}', i));
      else if (/[@*#?$!0-9-]/.test(script[i + 1] ?? '')) i++;
      else while (/\w/.test(script[i + 1] ?? '')) i++;
    } else if (ch === '#' && !inWord) {
      const nl = script.indexOf('\n', i);
      i = nl < 0 ? script.length : nl - 1;
    } else if (ch === '&' && (script[i - 1] === '<' || script[i - 1] === '>' || script[i + 1] === '>')) {
      word += ch;
      inWord = true;
    } else if (';&|()\n'.includes(ch)) {
      endCommand();
    } else if (ch === ' ' || ch === '\t') {
      endWord();
    } else {
      word += ch;
      inWord = true;
    }
  }
  endCommand();
  return commands.filter((c) => c.length > 0);
}

function matchParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  return s.length;
}

/** Drops keywords, assignments, redirections and builtins in front of the command word. */
function simpleCommand(raw: string[]): Word[] {
  const words: Word[] = [];
  for (let i = 0; i < raw.length; i++) {
    const w = raw[i]!;
    const redirect = /^\d*(<>|>>|<<|<&|>&|[<>])(.*)$/.exec(w);
    if (redirect) {
      if (redirect[2] === '') i++;
      continue;
    }
    words.push(w.includes('\0') ? (w === '\0' ? null : w) : w);
  }
  let k = 0;
  while (k < words.length) {
    const w = words[k];
    if (typeof w === 'string' && SHELL_KEYWORDS.has(w)) k++;
    else if (typeof w === 'string' && /^[A-Za-z_]\w*=/.test(w)) k++;
    else if (w === 'for' || w === 'case' || w === 'select') return [];
    else if (w === 'exec' || w === 'command' || w === 'builtin') k++;
    else break;
  }
  const cmd = words.slice(k);
  if (typeof cmd[0] === 'string' && SHELL_BUILTINS.has(cmd[0])) return [];
  if (typeof cmd[0] === 'string' && cmd[0].includes('\0')) return [];
  return cmd;
}
