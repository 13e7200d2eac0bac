"""Chinese message templates: versioned per event type and channel, rendered in a Jinja2 sandbox.

Built-in templates are version 1 and live here; admins publish later versions to the database. The
sandbox keeps an admin's template from reaching Python internals, and ``StrictUndefined`` makes a
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

from govshared.events import EventType
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
    """Render a template; SMS templates also yield the provider's parameters."""
    title = render_text(spec.title, context, limits) if spec.title else None
    body = render_text(spec.body, context, limits)
    if spec.channel is Channel.SMS:
        params = {name: str(context[name]) for name in variables(spec.body)}
        return Rendered(spec.version, title, body, spec.sms_template_id, params)
    return Rendered(spec.version, title, body)


_APP = "您的「{{ item_name }}」申请（办件编号 {{ application_no }}）"
# The notice or decision the transition decided, when there is one. Approval's worker seals it a
# moment later and ``document.issued`` then serves the file itself (version 2 of these texts; the
# first said it was sealed already, which is no longer true when this notice goes out).
_DOC = (
    "{% if details is defined and details.document is defined %}《{{ details.document.title }}》"
    "（文号 {{ details.document.number }}）加盖电子印章后将另行向您送达，"
    "届时可在办件进度中下载，并可在一网通办“文书查验”中核验真伪。{% endif %}"
)

# (event type, title, inbox/email body, SMS body); the SMS text is the one approved by the provider.
_APPLICATION_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.APPLICATION_SUBMITTED,
        "申请已提交：{{ item_name }}",
        _APP + "已提交，等待受理。",
        "您的{{ item_name }}申请{{ application_no }}已提交，等待受理。",
    ),
    (
        EventType.APPLICATION_ACCEPTED,
        "受理通知：{{ item_name }}",
        _APP + "已受理。{% if due_on %}法定办结期限为{{ due_on }}。{% endif %}" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}已受理。",
    ),
    (
        EventType.APPLICATION_DEEMED_ACCEPTED,
        "受理通知（视为受理）：{{ item_name }}",
        _APP + "因受理期限届满，依法自材料收到之日起视为受理。",
        "您的{{ item_name }}申请{{ application_no }}依法视为受理。",
    ),
    (
        EventType.APPLICATION_REJECTED,
        "不予受理通知：{{ item_name }}",
        _APP + "不予受理。理由：{{ reason or '详见不予受理通知书' }}。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}不予受理，详情请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENT_REQUESTED,
        "补正材料通知：{{ item_name }}",
        _APP
        + "需要一次性补正材料：{{ reason or '详见补正材料通知书' }}。请在补正后重新提交。"
        + _DOC,
        "您的{{ item_name }}申请{{ application_no }}需补正材料，请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENTED,
        "补正材料已提交：{{ item_name }}",
        _APP + "的补正材料已提交，等待受理。",
        None,
    ),
    (
        EventType.APPLICATION_PAUSED,
        "特别程序告知：{{ item_name }}",
        _APP + "进入特别程序（{{ reason or '专家评审等' }}），所需时间不计入办理时限。"
        "{% if due_on %}预计于{{ due_on }}前完成。{% endif %}",
        "您的{{ item_name }}申请{{ application_no }}进入特别程序，所需时间不计入办理时限。",
    ),
    (
        EventType.APPLICATION_RESUMED,
        "恢复办理：{{ item_name }}",
        _APP + "特别程序已结束，恢复计算办理时限。",
        None,
    ),
    (
        EventType.APPLICATION_EXTENDED,
        "延期告知：{{ item_name }}",
        _APP + "经负责人批准延长办理期限{% if due_on %}至{{ due_on }}{% endif %}。"
        "理由：{{ reason or '详见延期告知书' }}。",
        "您的{{ item_name }}申请{{ application_no }}办理期限已依法延长。",
    ),
    (
        EventType.APPLICATION_APPROVED,
        "准予行政许可决定：{{ item_name }}",
        _APP + "已作出准予行政许可决定，许可证将依法在十个工作日内颁发。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}已准予许可。",
    ),
    (
        EventType.APPLICATION_DENIED,
        "不予行政许可决定：{{ item_name }}",
        _APP + "经审查不予许可。理由：{{ reason or '详见不予行政许可决定书' }}。"
        "您享有依法申请行政复议或者提起行政诉讼的权利。" + _DOC,
        "您的{{ item_name }}申请{{ application_no }}不予许可，详情请登录一网通办查看。",
    ),
    (
        EventType.APPLICATION_WITHDRAWN,
        "申请已撤回：{{ item_name }}",
        _APP + "已撤回。",
        None,
    ),
    (
        EventType.APPLICATION_FILED,
        "备案完成：{{ item_name }}",
        _APP + "已完成备案。",
        "您的{{ item_name }}备案{{ application_no }}已完成。",
    ),
    (
        EventType.BUNDLE_DECIDED,
        "一件事办理结果：{{ bundle_name }}",
        "{{ applicant_name }}：您申请的「{{ bundle_name }}」一件事{{ summary }}。"
        "{% for i in items %}\n{{ i.item_name }}（{{ i.application_no }}）：{{ i.state_label }}"
        "{% if i.reason %}，理由：{{ i.reason }}{% endif %}{% endfor %}",
        "您申请的{{ bundle_name }}一件事已全部办结，请登录一网通办查看结果。",
    ),
]

# A sealed document served with a notice: where to download it (with the holder's own login) and
# where anyone verifies it.
_LINKS = (
    "\n下载：{{ download_url }}（登录一网通办后下载）"
    "\n核验：{{ document.verify_url }}（文件 SHA-256：{{ document.pdf_sha256 }}）"
)
# The certificate of a licence event, when license sealed one (version 2 of these templates).
_CERTIFICATE = (
    "{% if document is defined and document %}"
    "\n《{{ document.title }}》（证书编号 {{ document.number }}）已加盖电子印章。"
    + _LINKS
    + "{% endif %}"
)
# Email only: the PDF travels with the message when fan-out decided it would (see notify.documents).
_ATTACHED = (
    "{% if document_attached is defined and document_attached %}"
    "\n\n附件：{{ document_filename }}（加盖电子印章的 PDF 文件，与下载的文件相同）。{% endif %}"
)

# The acts that suspend or end a licence: what the law requires each notice to say.
_REMEDIES = "您享有依法申请行政复议或者提起行政诉讼的权利。"
_HEARING = (
    "作出处罚决定前，本机关已于{{ rights_notified_on }}告知您拟作出的处罚及其事实、理由、依据和"
    "陈述、申辩、要求听证的权利（《行政处罚法》第四十四条、第六十三条）"
    "{% if hearing == 'held' %}，并已依您的要求举行听证{% elif hearing == 'waived' %}，"
    "您已明确放弃听证{% else %}，您未在告知后五日内要求听证{% endif %}。"
)
_CANCELLED = "{% if cancelled_on %}该行政许可已于{{ cancelled_on }}依法注销（《行政许可法》第七十条）。{% endif %}"

_DOCUMENT_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.DOCUMENT_ISSUED,
        "文书送达：《{{ document.title }}》",
        "{{ applicant_name }}：" + _APP + "的《{{ document.title }}》（文号 {{ document.number }}）"
        "已加盖电子印章，现依法向您送达。" + _LINKS,
        "您的{{ item_name }}申请{{ application_no }}的{{ document_title }}已送达，"
        "请登录一网通办查看下载。",
    ),
]

_LICENCE_TEXTS: list[tuple[EventType, str, str, str | None]] = [
    (
        EventType.LICENCE_ISSUED,
        "许可证已颁发：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已颁发"
        "{% if valid_until %}，有效期至{{ valid_until }}{% endif %}。" + _CERTIFICATE,
        "您的{{ licence_type }}{{ licence_no }}已颁发。",
    ),
    (
        EventType.LICENCE_CHANGED,
        "许可证已变更：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已变更。"
        "{% if legal_basis %}本次变更由本机关依据{{ legal_basis }}作出（《行政许可法》第八条）。"
        "理由：{{ reason }}。补偿：{{ compensation_note }}。"
        + _REMEDIES
        + "{% endif %}"
        + _CERTIFICATE,
        None,
    ),
    (
        EventType.LICENCE_RENEWED,
        "许可证已延续：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已延续"
        "{% if valid_until %}至{{ valid_until }}{% endif %}。" + _CERTIFICATE,
        None,
    ),
    (
        EventType.LICENCE_PENALTY_NOTIFIED,
        "行政处罚事先告知：{{ licence_type }}",
        "{{ holder_name }}：本机关拟依据{{ legal_basis }}，"
        "{% if intended_penalty == 'suspension' %}暂扣{% else %}吊销{% endif %}"
        "您的「{{ licence_type }}」（编号 {{ licence_no }}）。事实和理由：{{ reason }}。"
        "根据《行政处罚法》第四十四条、第六十三条、第六十四条，您有权进行陈述和申辩，"
        "并有权要求听证；要求听证的，请于{{ hearing_request_deadline }}前提出。"
        "逾期未提出的，视为放弃听证。",
        "您的{{ licence_type }}{{ licence_no }}拟被行政处罚，"
        "您有权陈述申辩并于{{ hearing_request_deadline }}前要求听证，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_SUSPENDED,
        "暂扣许可证件决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}作出行政处罚决定（{{ penalty_decision_no }}），"
        "于{{ act_on }}暂扣您的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "{% if suspended_until %}至{{ suspended_until }}{% endif %}，暂扣期间不得从事许可事项。"
        "理由：{{ reason }}。" + _HEARING + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法暂扣，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_REVOKED,
        "撤销行政许可决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}（《行政许可法》第六十九条），"
        "于{{ act_on }}撤销您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "理由：{{ reason }}。{% if compensation_note %}补偿：{{ compensation_note }}。{% endif %}"
        + _CANCELLED
        + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被撤销，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_WITHDRAWN,
        "撤回行政许可决定：{{ licence_type }}",
        "{{ holder_name }}：因{{ reason }}，本机关依据{{ legal_basis }}（《行政许可法》第八条），"
        "于{{ act_on }}撤回您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "由此给您造成财产损失的，依法给予补偿：{{ compensation_note }}。" + _CANCELLED + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法撤回，补偿事项请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_PENALTY_REVOKED,
        "吊销许可证件决定：{{ licence_type }}",
        "{{ holder_name }}：本机关依据{{ legal_basis }}作出行政处罚决定（{{ penalty_decision_no }}），"
        "于{{ act_on }}吊销您的「{{ licence_type }}」（编号 {{ licence_no }}）。"
        "理由：{{ reason }}。" + _HEARING + _CANCELLED + _REMEDIES,
        "您的{{ licence_type }}{{ licence_no }}已被依法吊销，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_CANCELLED,
        "行政许可注销通知：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已于{{ cancelled_on }}"
        "依法注销（《行政许可法》第七十条）。{{ reason }}。",
        "您的{{ licence_type }}{{ licence_no }}已依法注销。",
    ),
    (
        EventType.LICENCE_EXPIRED,
        "许可证已到期：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）已到期失效。"
        "{% if reason %}{{ reason }}。{% endif %}" + _CANCELLED,
        None,
    ),
    (
        EventType.LICENCE_RECTIFICATION_ORDERED,
        "责令限期整改通知：{{ licence_type }}",
        "{{ holder_name }}：您以告知承诺方式取得的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "经核查：{{ reason }}。请于{{ rectify_by }}前整改到位；逾期不整改或者整改后仍不符合条件的，"
        "将依法撤销该行政许可并记入信用记录（国办发〔2020〕42号）。",
        "您的{{ licence_type }}{{ licence_no }}须于{{ rectify_by }}前整改，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_INSPECTION_SCHEDULED,
        "双随机抽查通知：{{ licence_type }}",
        "{{ holder_name }}：经“双随机、一公开”随机抽取，本机关将对您持有的「{{ licence_type }}」"
        "（编号 {{ licence_no }}）开展事中事后监管检查，检查将于{{ inspection_due_on }}前完成。"
        "检查人员将出示执法证件；检查人员与您有利害关系的，您可以申请回避。",
        "您的{{ licence_type }}{{ licence_no }}被抽中双随机检查，"
        "将于{{ inspection_due_on }}前完成，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_INSPECTED,
        "双随机抽查结果：{{ licence_type }}",
        "{{ holder_name }}：本机关对您持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "的抽查结果为：{{ reason }}。"
        "{% if rectify_by %}请于{{ rectify_by }}前整改到位，本机关将在期限届满后复查；"
        "逾期未改正的，将依法处理并记入信用记录。{% endif %}"
        "抽查结果将在二十个工作日内通过一网通办向社会公示。",
        "您的{{ licence_type }}{{ licence_no }}双随机抽查结果已出，详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_RECTIFICATION_MISSED,
        "逾期未整改通知：{{ licence_type }}",
        "{{ holder_name }}：本机关对您持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "双随机抽查发现问题并责令限期整改，您{{ reason }}。"
        "拟作出行政处罚的，本机关将另行告知拟处罚的事实、理由、依据及您依法享有的陈述、申辩和"
        "要求听证的权利（《行政处罚法》第四十四条）。",
        "您的{{ licence_type }}{{ licence_no }}逾期未整改，已记入严重失信记录，"
        "详情请登录一网通办查看。",
    ),
    (
        EventType.LICENCE_RENEWAL_DUE,
        "许可证延续提醒：{{ licence_type }}",
        "{{ holder_name }}：您的「{{ licence_type }}」（编号 {{ licence_no }}）将于{{ valid_until }}到期，"
        "请至少在到期前三十日申请延续。",
        "您的{{ licence_type }}{{ licence_no }}将于{{ valid_until }}到期，请及时申请延续。",
    ),
]

# Staff notices: the jurisdiction's staff see new work and clock warnings in their inbox.
_STAFF_TEXTS: list[tuple[EventType, str, str]] = [
    (
        EventType.APPLICATION_SUBMITTED,
        "新申请待受理：{{ item_name }}",
        "{{ applicant_name }}提交了「{{ item_name }}」申请（办件编号 {{ application_no }}），"
        "请在五个工作日内受理、不予受理或一次性告知补正。",
    ),
    (
        EventType.APPLICATION_SUPPLEMENTED,
        "补正材料待审核：{{ item_name }}",
        "{{ applicant_name }}已提交「{{ item_name }}」申请（办件编号 {{ application_no }}）的补正材料。",
    ),
    (
        EventType.APPLICATION_CLOCK_WARNING,
        "办理时限临近（黄灯）：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }} 即将到期"
        "{% if due_on %}（{{ due_on }}）{% endif %}，请尽快办理。",
    ),
    (
        EventType.APPLICATION_CLOCK_OVERDUE,
        "办理超期（红灯）：{{ item_name }}",
        "「{{ item_name }}」办件 {{ application_no }} 已超过办理时限"
        "{% if due_on %}（{{ due_on }}）{% endif %}，请立即处理。",
    ),
    (
        EventType.LICENCE_RECTIFICATION_MISSED,
        "逾期未整改，待依法处理：{{ licence_type }}",
        "{{ holder_name }}（{{ holder_uscc }}）持有的「{{ licence_type }}」（编号 {{ licence_no }}）"
        "未在{{ rectify_by }}前整改到位，已记入严重失信记录。{{ reason }}。"
        "请在抽查处理建议中核实，并依法启动相应的证照处理程序。",
    ),
]

STAFF_CHANNEL = "staff_inbox"

# Built-in texts changed since version 1 (inbox, email and webhook; SMS texts are unchanged):
# version 2 of the licence texts names and links the sealed certificate (issue 7).
_VERSIONS: dict[EventType, int] = {
    EventType.APPLICATION_ACCEPTED: 2,
    EventType.APPLICATION_REJECTED: 2,
    EventType.APPLICATION_SUPPLEMENT_REQUESTED: 2,
    EventType.APPLICATION_APPROVED: 2,
    EventType.APPLICATION_DENIED: 2,
    EventType.LICENCE_ISSUED: 2,
    EventType.LICENCE_CHANGED: 3,  # version 3: an Art. 8 change names its basis and compensation
    EventType.LICENCE_RENEWED: 2,
    # version 2: each act that suspends or ends a licence is its own notice (issue 14)
    EventType.LICENCE_SUSPENDED: 2,
    EventType.LICENCE_REVOKED: 2,
    EventType.LICENCE_EXPIRED: 2,
}
# Event types that can serve a sealed document, whose email may carry it.
_SERVES_DOCUMENTS = frozenset(
    {
        EventType.DOCUMENT_ISSUED,
        EventType.LICENCE_ISSUED,
        EventType.LICENCE_CHANGED,
        EventType.LICENCE_RENEWED,
    }
)
# Provider template ids are unique per text: two event types named ``issued`` need their own.
_SMS_IDS: dict[EventType, str] = {
    EventType.DOCUMENT_ISSUED: "SMS_DOCUMENT_ISSUED",
    # 暂扣 is a penalty, no longer "暂停": a new text needs its own provider id.
    EventType.LICENCE_SUSPENDED: "SMS_SUSPENDED_V2",
}


def _builtins() -> dict[tuple[str, str], TemplateSpec]:
    specs: dict[tuple[str, str], TemplateSpec] = {}
    for event_type, title, body, sms in [*_APPLICATION_TEXTS, *_DOCUMENT_TEXTS, *_LICENCE_TEXTS]:
        key = str(event_type)
        version = _VERSIONS.get(event_type, 1)
        attached = _ATTACHED if event_type in _SERVES_DOCUMENTS else ""
        for channel in (Channel.INBOX, Channel.EMAIL, Channel.WEBHOOK):
            email_body = body + attached + "\n\n——一网通办（本邮件由系统自动发送，请勿直接回复）"
            specs[(key, channel)] = TemplateSpec(
                key, channel, version, title, email_body if channel is Channel.EMAIL else body
            )
        if sms is not None:
            sms_id = _SMS_IDS.get(event_type, "SMS_" + key.split(".")[-2].upper())
            specs[(key, Channel.SMS)] = TemplateSpec(key, Channel.SMS, 1, None, sms, sms_id)
    for event_type, title, body in _STAFF_TEXTS:
        specs[(str(event_type), STAFF_CHANNEL)] = TemplateSpec(
            str(event_type), Channel.INBOX, 1, title, body
        )
    return specs


BUILTIN_TEMPLATES: dict[tuple[str, str], TemplateSpec] = _builtins()
