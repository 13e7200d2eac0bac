"""Bundles' domain errors: stable codes with Chinese and English titles."""

from __future__ import annotations

from govshared.problems import Conflict, DomainError, NotFound


class BundleNotFound(NotFound):
    code = "bundle_not_found"
    title = "一件事不存在"
    title_en = "Bundle not found"


class BundleVersionNotFound(NotFound):
    code = "bundle_version_not_found"
    title = "一件事的该版本不存在"
    title_en = "Bundle version not found"


class BundleExists(Conflict):
    code = "bundle_exists"
    title = "一件事编码已存在"
    title_en = "A bundle with this code already exists"


class NoBundleDraft(Conflict):
    code = "no_bundle_draft_to_publish"
    title = "没有待发布的一件事草稿"
    title_en = "There is no draft version of the bundle to publish"


class BundleDefinitionInvalid(DomainError):
    """The definition names an item, form field or material the catalogue does not have."""

    status = 422
    code = "bundle_definition_invalid"
    title = "一件事的定义与事项目录不一致"
    title_en = "The bundle's definition does not match the catalogue"


class BundleApplicationNotFound(NotFound):
    code = "bundle_application_not_found"
    title = "一件事申请不存在"
    title_en = "Bundle application not found"


class BundleItemNotSubmitted(DomainError):
    """One item of the bundle cannot be submitted: nothing of the bundle is."""

    status = 422
    code = "bundle_item_not_submitted"
    title = "一件事中有事项不能提交，整件事未提交"
    title_en = "An item of the bundle cannot be submitted, so none of the bundle was"


class BundleItemNotInBundle(DomainError):
    """The application carries a commitment or signature for an item the bundle does not hold."""

    status = 422
    code = "bundle_item_not_in_bundle"
    title = "所附承诺或签署的事项不在该一件事中"
    title_en = "A commitment or signature is given for an item that is not in the bundle"
