"""The Jinja2 sandbox that renders Chinese message templates, within limits of steps, size and time.

The sandbox keeps an admin's template from reaching Python internals, and ``StrictUndefined`` makes a
missing variable fail the render: a notice is sent whole or not at all.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache, partial, wraps
from typing import Any, TypeVar

from jinja2 import StrictUndefined, TemplateError, meta, nodes, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from notify.errors import TemplateLimitExceeded, TemplateRenderFailed
from notify.models import Channel

T = TypeVar("T")
MAX_OUTPUT = 20_000
"""Default longest rendered text (characters); ``NOTIFY_TEMPLATE_MAX_OUTPUT_CHARS`` tunes it."""


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """What one render may spend: output characters, steps (loop turns and calls) and time."""

    max_output: int = MAX_OUTPUT
    max_steps: int = 100_000
    max_seconds: float = 1.0
    # Width or precision of a format (``%05d``, ``{:>8}``); a notice never needs a wide one.
    max_format_width: int = 200

    @property
    def max_value(self) -> int:
        """Longest string or list one operation may build: the output limit."""
        return self.max_output

    @property
    def max_produced(self) -> int:
        """Text produced along the way (macros, ``set`` blocks): a few times the output."""
        return 4 * self.max_output


DEFAULT_LIMITS = RenderLimits()
# Results of integer arithmetic beyond this many bits are refused (``ns.x * ns.x`` in a loop).
MAX_INT_BITS = 4096


class _Budget:
    """The running account of one render; every loop turn, call and output piece is charged."""

    __slots__ = ("deadline", "limits", "produced", "steps")

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.steps = 0
        self.produced = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def step(self) -> None:
        """One unit of work; past the step count or the deadline the render stops."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise TemplateLimitExceeded(
                f"模板执行步数超过 {self.limits.max_steps} 步（循环或调用过多）", limit="steps"
            )
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(
                f"模板渲染超过 {self.limits.max_seconds:g} 秒", limit="time"
            )

    def produce(self, size: int) -> None:
        """Text produced anywhere in the template (printed, captured or returned by a macro)."""
        self.produced += size
        if self.produced > self.limits.max_produced:
            raise TemplateLimitExceeded(
                f"模板渲染结果超过 {self.limits.max_output} 个字符", limit="output"
            )
        self.step()


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


def _charge() -> _Budget | None:
    budget = _budget.get()
    if budget is not None:
        budget.step()
    return budget


def _limits() -> RenderLimits:
    budget = _budget.get()
    return budget.limits if budget is not None else DEFAULT_LIMITS


def _too_large(what: str = "模板生成的内容过长") -> TemplateLimitExceeded:
    return TemplateLimitExceeded(f"{what}（上限 {_limits().max_value} 个字符）", limit="value_size")


def _check_size(value: Any) -> Any:
    """A string, list or number built by the template must stay within the limits."""
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > _limits().max_value:
        raise _too_large()
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _too_large("模板计算的数值过大")
    return value


# printf-style conversions: flags, width, precision (``%(name)-08.3f``).
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def _check_printf(fmt: str) -> None:
    """Refuse ``*`` and wide widths or precisions before ``%`` builds anything."""
    bound = _limits().max_format_width
    for width, precision, _conversion in _PRINTF.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > bound):
                raise TemplateLimitExceeded(f"格式宽度或精度超过 {bound}", limit="format_width")


def _check_format_spec(spec: str) -> None:
    """Refuse a ``str.format`` spec whose width or precision is wider than the bound."""
    bound = _limits().max_format_width
    if any(int(number) > bound for number in re.findall(r"\d+", spec)):
        raise TemplateLimitExceeded(f"格式宽度或精度超过 {bound}", limit="format_width")


def _printf(fmt: Any, args: Any) -> Any:
    if isinstance(fmt, str | bytes):
        _check_printf(fmt if isinstance(fmt, str) else fmt.decode("latin-1"))
    return _check_size(fmt % args)


class _BoundedFormatter(SandboxedFormatter):
    """``str.format`` in the sandbox, with bounded widths (``'{:050000000}'.format(1)``)."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        """Check the resolved spec (nested ``{:{}}`` specs included) before formatting."""
        _check_format_spec(format_spec)
        _charge()
        return _check_size(super().format_field(value, format_spec))


def _ticking(function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that charges a step and whose result is size-checked."""

    @wraps(function)
    def filtered(*args: Any, **kwargs: Any) -> Any:
        _charge()
        return _check_size(function(*args, **kwargs))

    return filtered


def _bounded_filters() -> dict[str, Callable[..., Any]]:
    """Jinja's filters, each charged, and those that amplify their input checked beforehand."""
    limit = _limits

    def guard(name: str, estimate: Callable[..., int]) -> Callable[..., Any]:
        original = FILTERS[name]

        @wraps(original)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            _charge()
            if estimate(*args, **kwargs) > limit().max_value:
                raise _too_large()
            return _check_size(original(*args, **kwargs))

        return guarded

    def text(value: Any) -> str:
        return value if isinstance(value, str) else str(value)

    def replace(_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> int:
        value, old, new = text(value), text(old), text(new)
        times = len(value) + 1 if not old else value.count(old)
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        return len(value) + times * max(len(new) - len(old), 0)

    def width_of(value: Any, width: Any = 4, *_: Any, **__: Any) -> int:
        lines = text(value).count("\n") + 1
        size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        return len(text(value)) + lines * size

    def centre(value: Any, width: Any = 80) -> int:
        return width if isinstance(width, int) else 0

    def join(_ctx: Any, value: Any, d: Any = "", attribute: Any = None) -> int:
        items = value if isinstance(value, list | tuple | range | str) else []
        return len(items) * len(text(d)) + sum(len(text(i)) for i in items[: limit().max_value])

    def urlize(_ctx: Any, value: Any, *args: Any, **kwargs: Any) -> int:
        # Each word may become a link carrying the target and rel attributes.
        extra = sum(len(text(v)) for v in (*args, *kwargs.values()) if isinstance(v, str))
        return 3 * len(text(value)) + len(text(value).split()) * (extra + 60)

    def total(_env: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> int:
        # Summing lists copies the running total each time: numbers only.
        return 0 if isinstance(start, int | float) else limit().max_value + 1

    def wordwrap(_env: Any, s: Any, width: Any = 79, *args: Any, **kwargs: Any) -> int:
        wrap = kwargs.get("wrapstring") or (args[1] if len(args) > 1 else None) or "\n"
        step = width if isinstance(width, int) and width > 0 else 1
        return len(text(s)) * (1 + len(text(wrap)) // step + 1)

    def batch(value: Any, linecount: Any, fill_with: Any = None) -> int:
        return linecount if isinstance(linecount, int) else 0

    def slice_(value: Any, slices: Any, fill_with: Any = None) -> int:
        return slices if isinstance(slices, int) else 0

    def tojson(_ctx: Any, value: Any, indent: Any = None) -> int:
        return indent * 1000 if isinstance(indent, int) else 0

    filters = {name: _ticking(f) for name, f in FILTERS.items()}
    guarded_join = guard("join", join)

    @pass_eval_context
    def bounded_join(eval_ctx: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        """``join`` of any iterable: materialised first, so that the estimate sees it all."""
        if not isinstance(value, list | tuple | range | str):
            value = list(value)
        return guarded_join(eval_ctx, value, *args, **kwargs)

    filters.update(
        urlize=guard("urlize", urlize),
        sum=guard("sum", total),
        replace=guard("replace", replace),
        indent=guard("indent", width_of),
        center=guard("center", centre),
        join=bounded_join,
        wordwrap=guard("wordwrap", wordwrap),
        batch=guard("batch", batch),
        slice=guard("slice", slice_),
        tojson=guard("tojson", tojson),
    )
    filters["format"] = _ticking(
        lambda value, *args, **kwargs: _printf(text(value), kwargs or args)
    )
    return filters


# str and bytes methods whose result can be much larger than their inputs.
_AMPLIFYING = frozenset({"replace", "join", "translate"})


def _check_method_call(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a builtin method call that would build a huge value (``'x'.ljust(10**8)``)."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes | bytearray | int | float):
        return
    bound = _limits().max_value
    values = [*args, *kwargs.values()]
    # ljust, center, zfill, expandtabs, to_bytes, …: an integer argument is a size.
    if any(isinstance(v, int) and not isinstance(v, bool) and v > bound for v in values):
        raise _too_large()
    name = getattr(method, "__name__", "")
    if name in _AMPLIFYING and isinstance(owner, str | bytes | bytearray):
        sizes = [len(v) for v in values if isinstance(v, str | bytes)]
        if isinstance(args[:1] and args[0], dict):
            sizes += [len(v) for v in args[0].values() if isinstance(v, str | bytes)]
        if isinstance(args[:1] and args[0], list | tuple):
            sizes.append(sum(len(v) for v in args[0] if isinstance(v, str | bytes)))
            sizes.append(len(args[0]) * len(owner))
        if len(owner) * max(sizes, default=0) > bound and max(sizes, default=0) > 1:
            raise _too_large()


class _Generator(CodeGenerator):
    """Jinja's code generator, charging every loop turn and every piece of output to the budget.

    Without this a loop with an empty body (``{% for a in range(100000) %}{% for b in …``) runs
    for hours without touching anything the sandbox sees.
    """

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        """Iterate through ``environment.bounded_iter``, which charges each turn."""
        if not getattr(node, "bounded", False):
            node.iter = nodes.Call(
                nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None
            ).set_lineno(node.lineno)
            node.bounded = True  # type: ignore[attr-defined]
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        """``a ~ b`` is size-checked like ``a + b`` (doubling a string per turn stops at once)."""
        self.write("environment.sized(")
        super().visit_Concat(node, frame)
        self.write(")")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.tally({super()._output_const_repr(group)})"

    def _output_child_pre(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        self.write("environment.tally(")
        super()._output_child_pre(node, frame, finalize)

    def _output_child_post(self, node: nodes.Expr, frame: Frame, finalize: Any) -> None:
        super()._output_child_post(node, frame, finalize)
        self.write(")")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, bounded: no value, format width, loop or output beyond the render's limits.

    Immutable: a template may not grow a list in place (``x.extend(x)`` doubles it per turn).
    """

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = _bounded_filters()
        # lipsum(n) writes n paragraphs: nothing a notice needs.
        self.globals.pop("lipsum", None)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """Refuse powers; check repetitions and formats before, sums and products after."""
        _charge()
        if operator == "**":
            raise SecurityError("模板中不允许乘方运算")
        if operator == "%":
            return _printf(left, right) if isinstance(left, str | bytes) else left % right
        if operator == "*":
            for value, times in ((left, right), (right, left)):
                sized = isinstance(value, str | bytes | list | tuple) and isinstance(times, int)
                if sized and len(value) * times > _limits().max_value:
                    raise _too_large()
            both_int = isinstance(left, int) and isinstance(right, int)
            if both_int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise _too_large("模板计算的数值过大")
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call (functions, methods, macros, recursive loops) is a step; sizes checked."""
        _charge()
        _check_method_call(__obj, args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format``/``format_map`` through the bounded formatter."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner: str = value.__self__
        is_map = value.__name__ == "format_map"
        formatter = _BoundedFormatter(self)

        def bounded(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return type(owner)(_check_size(formatter.vformat(owner, args, kwargs)))

        return bounded

    def bounded_iter(self, iterable: Any) -> Iterator[Any]:
        """An iterable whose every turn is charged to the render's budget."""
        for item in iterable:
            _charge()
            yield item

    def sized(self, value: Any) -> Any:
        """A value the template built, charged and size-checked."""
        _charge()
        return _check_size(value)

    def tally(self, piece: str) -> str:
        """A piece of output (or of captured text), charged by size."""
        budget = _budget.get()
        if budget is not None:
            budget.produce(len(piece))
        return piece


_env = _Sandbox(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, cache_size=1000
)


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """One version of the template of an event type on a channel."""

    event_type: str
    channel: Channel
    version: int
    title: str | None
    body: str
    sms_template_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered notice."""

    version: int
    title: str | None
    body: str
    sms_template_id: str | None = None
    sms_params: dict[str, str] | None = None


@lru_cache(maxsize=2048)
def _compile(source: str) -> Any:
    return _env.from_string(source)


def check_syntax(source: str) -> None:
    """Raise ``TemplateRenderFailed`` when the template does not compile."""
    try:
        _compile(source)
    except TemplateError as exc:
        raise TemplateRenderFailed(f"模板语法错误：{exc}") from exc
    except (RecursionError, MemoryError) as exc:
        # A thousand nested brackets exhaust the parser's recursion: refused like bad syntax.
        raise TemplateRenderFailed("模板嵌套过深") from exc


def variables(source: str) -> list[str]:
    """The variables a template reads (an SMS template's parameters, in order of name)."""
    return sorted(meta.find_undeclared_variables(_env.parse(source)))


def render_text(source: str, context: dict[str, Any], limits: RenderLimits = DEFAULT_LIMITS) -> str:
    """Render one template string within ``limits``; ``TemplateRenderFailed`` says what failed.

    The output is streamed and the render stops as soon as it passes the limit, so a template that
    would write megabytes is refused after ``limits.max_output`` characters, not after building
    them; loop turns, calls and time are charged to the same budget (``TemplateLimitExceeded``).
    """
    token = _budget.set(_Budget(limits))
    try:
        check_syntax(source)
        pieces: list[str] = []
        size = 0
        for piece in _compile(source).generate(context):
            size += len(piece)
            if size > limits.max_output + 1024:  # room for the whitespace strip() removes
                raise TemplateLimitExceeded(
                    f"模板渲染结果超过 {limits.max_output} 个字符", limit="output"
                )
            pieces.append(piece)
        text = "".join(pieces).strip()
    except TemplateRenderFailed:
        raise
    except TemplateError as exc:
        raise TemplateRenderFailed(f"模板渲染失败：{exc}", error=str(exc)) from exc
    except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
        # An admin's template that divides by zero or indexes past a list fails like any other.
        raise TemplateRenderFailed(f"模板渲染失败：{type(exc).__name__}: {exc}") from exc
    except (RecursionError, MemoryError) as exc:
        raise TemplateLimitExceeded("模板递归过深或占用内存过多", limit="steps") from exc
    finally:
        _budget.reset(token)
    if len(text) > limits.max_output:
        raise TemplateLimitExceeded(f"模板渲染结果超过 {limits.max_output} 个字符", limit="output")
    return text


# Admin-written templates render here, not in the default executor that file storage and DNS
# share: however many previews arrive at once, they wait for these two threads.
_TEMPLATE_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="notify-template")


async def off_loop(function: Callable[..., T], *args: Any) -> T:
    """Run a render or compile of an admin's template in the template threads."""
    return await asyncio.get_running_loop().run_in_executor(
        _TEMPLATE_THREADS, partial(function, *args)
    )


def render(
    spec: TemplateSpec, context: dict[str, Any], limits: RenderLimits = DEFAULT_LIMITS
) -> Rendered:
    """Render a template; SMS templates also yield the provider's parameters.

    Every failure is a ``TemplateRenderFailed``: a caller never sees another exception because
    of what an admin wrote.
    """
    try:
        title = render_text(spec.title, context, limits) if spec.title else None
        body = render_text(spec.body, context, limits)
        if spec.channel is Channel.SMS:
            params = sms_params(spec.body, context)
            return Rendered(spec.version, title, body, spec.sms_template_id, params)
        return Rendered(spec.version, title, body)
    except TemplateRenderFailed:
        raise
    except (RecursionError, MemoryError) as exc:
        raise TemplateLimitExceeded("模板递归过深或占用内存过多", limit="steps") from exc
    except Exception as exc:
        raise TemplateRenderFailed(f"模板渲染失败：{type(exc).__name__}: {exc}") from exc


def sms_params(source: str, context: dict[str, Any]) -> dict[str, str]:
    """The provider's parameters of an SMS template: one per variable it names, as text.

    The provider's approved template has a placeholder for each, so each is passed (providers
    refuse a message that lacks one). A variable the context lacks (the template
    only reads it under an untaken ``if``, tests it with ``is defined`` or gives it a
    ``default``) is passed as the empty string, as is a null one: the render has succeeded, so
    the template meant it to be optional, and no one should read "None" in a text message.
    """
    params: dict[str, str] = {}
    for name in variables(source):
        value = context.get(name)
        params[name] = "" if value is None else str(value)
    return params
