"""Run Jinja2's own compiled template code without importing jinja2.

``netharden/precompile.py`` compiles every template with Jinja2 (``Environment.compile``,
the code ``compile_templates``/``ModuleLoader`` use) into ``netharden/_templates_compiled.py``
(one module: one import instead of one per template); this module is the small runtime that code needs, so that a render imports neither
jinja2 (about a sixth of a cold ``netharden render``) nor its parser and compiler, and
compiles nothing.

What it implements is exactly what our templates' compiled code uses, with Jinja2
3.1's semantics copied from its source: ``Environment.getattr``/``getitem`` (attribute
first, then item; item first, then attribute), ``concat``, ``undefined`` (strict: any use
raises), template contexts (``resolve_or_missing``, ``get_all``, ``vars``,
``exported_vars``, ``new_context`` with shared parents for ``{% include %}``), and the
built-in filters ``map`` (a filter name; not ``attribute=``), ``join`` (no autoescape) and
``default``. The generator checks each compiled template against that list (an AST
walk, ``lite_problems``) and marks a template that uses anything else as not lite:
``templating.py`` renders it with jinja2 itself.

Errors are raised as they happen: a filter's ``RenderError`` as it is, a use of an
undefined value as ``UndefinedError`` naming it (what StrictUndefined raises in jinja2).
tests/test_speed_paths.py compares both paths byte for byte on every example, the
awkward profile and generated profiles, and fails under CI when the declared Jinja2
does not take this path for every template.
"""

from __future__ import annotations

from typing import Any

# what compiled code may use (precompile.lite_problems checks every module against it)
ENVIRONMENT_ATTRS = frozenset({"getattr", "getitem", "undefined", "concat", "filters", "get_template"})
CONTEXT_ATTRS = frozenset({"resolve_or_missing", "get_all", "eval_ctx", "vars", "exported_vars"})
TEMPLATE_ATTRS = frozenset({"root_render_func", "new_context"})
RUNTIME_NAMES = frozenset({"Undefined", "missing", "TemplateRuntimeError", "internalcode"})
BUILTIN_FILTERS = frozenset({"map", "join", "default"})


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "missing"


missing: Any = _Missing()


class TemplateRuntimeError(Exception):
    """Raised by compiled code (a missing filter, a construct this runtime lacks)."""


class UndefinedError(TemplateRuntimeError):
    pass


def internalcode(f):
    return f


def _fail(self, *_args, **_kwargs):
    raise UndefinedError(f"{self._name!r} is undefined" if self._name is not None else "undefined value")


class Undefined:
    """Jinja2's StrictUndefined: any use other than ``default`` or passing it on raises."""

    __slots__ = ("_hint", "_name", "_obj")

    def __init__(self, hint=None, obj=missing, name=None, exc=None):
        self._hint, self._obj, self._name = hint, obj, name

    def __getattr__(self, name):
        if name[:2] == "__":
            raise AttributeError(name)
        _fail(self)

    __iter__ = __str__ = __len__ = __bool__ = __eq__ = __ne__ = __hash__ = __contains__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __div__ = __rdiv__ = _fail
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _fail
    __pos__ = __neg__ = __call__ = __getitem__ = __lt__ = __le__ = __gt__ = __ge__ = __int__ = _fail
    __float__ = __complex__ = __pow__ = __rpow__ = __repr__ = _fail


def _unsupported(*_args, **_kwargs):
    raise TemplateRuntimeError("not supported by the lite runtime")


# imported by every compiled module; precompile.lite_problems makes sure these are not used
LoopContext = Macro = Markup = Namespace = TemplateNotFound = TemplateReference = _unsupported
escape = identity = markup_join = str_join = _unsupported


class _EvalContext:
    __slots__ = ("autoescape", "environment", "volatile")

    def __init__(self, environment):
        self.environment, self.autoescape, self.volatile = environment, False, False


class Context:
    __slots__ = ("environment", "eval_ctx", "exported_vars", "name", "parent", "vars")

    def __init__(self, environment, parent: dict, name: str):
        self.environment, self.parent, self.name = environment, parent, name
        self.vars: dict = {}
        self.exported_vars: set = set()
        self.eval_ctx = _EvalContext(environment)

    def resolve_or_missing(self, key: str):
        if key in self.vars:
            return self.vars[key]
        if key in self.parent:
            return self.parent[key]
        return missing

    def get_all(self) -> dict:
        if not self.vars:
            return self.parent
        if not self.parent:
            return self.vars
        return dict(self.parent, **self.vars)


class Template:
    __slots__ = ("environment", "globals", "name", "root_render_func")

    def __init__(self, environment, name: str, root):
        self.environment, self.name = environment, name
        self.root_render_func = root
        self.globals = environment.globals

    def new_context(self, vars=None, shared=False, locals=None) -> Context:
        """jinja2.runtime.new_context."""
        if vars is None:
            vars = {}
        parent = vars if shared else dict(self.globals, **vars)
        if locals:
            if shared:
                parent = dict(parent)
            for key, value in locals.items():
                if value is not missing:
                    parent[key] = value
        return Context(self.environment, parent, self.name)

    def render(self, context: dict) -> str:
        return self.environment.concat(self.root_render_func(self.new_context(dict(context))))


def do_map(context, value, name, *args, **kwargs):
    """jinja2.filters.sync_do_map with a filter name (``map('sh')``): one of our filters,
    which take plain arguments (``precompile.lite_problems`` refuses ``attribute=``)."""
    if name not in context.environment.plain_filters:
        _unsupported()
    filt = context.environment.filters[name]
    for item in value or ():
        yield filt(item, *args, **kwargs)


def do_join(eval_ctx, value, d=""):
    """jinja2.filters.sync_do_join without autoescape (``attribute=`` refused as for map)."""
    return str(d).join(map(str, value))


def do_default(value, default_value="", boolean=False):
    if isinstance(value, Undefined) or (boolean and not value):
        return default_value
    return value


class Environment:
    """The parts of jinja2.Environment that compiled template code calls."""

    undefined = Undefined

    def __init__(self, filters: dict, globals: dict, entries: dict):
        self.plain_filters = frozenset(filters)  # ours: plain functions of the value
        self.filters = {**filters, "map": do_map, "join": do_join, "default": do_default}
        self.globals = globals
        self.entries = entries  # template name -> (its source's bytes, factory of its root)
        self.cache: dict[str, Template] = {}

    concat = staticmethod("".join)

    def getattr(self, obj, attribute):
        try:
            return getattr(obj, attribute)
        except AttributeError:
            pass
        try:
            return obj[attribute]
        except (TypeError, LookupError, AttributeError):
            return self.undefined(obj=obj, name=attribute)

    def getitem(self, obj, argument):
        try:
            return obj[argument]
        except (AttributeError, TypeError, LookupError):
            if isinstance(argument, str):
                try:
                    return getattr(obj, argument)
                except AttributeError:
                    pass
            return self.undefined(obj=obj, name=argument)

    def get_template(self, name: str, parent: str | None = None) -> Template:
        template = self.cache.get(name)
        if template is None:
            # templating._lite() made sure every template is here, lite and current;
            # the factory binds ``environment`` as jinja2's Template._from_namespace does
            template = self.cache[name] = Template(self, name, self.entries[name][1](self))
        return template

    def render(self, name: str, context: dict) -> str:
        return self.get_template(name).render(context)
