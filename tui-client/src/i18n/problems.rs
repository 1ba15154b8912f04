//! What a sync or `verify` found wrong, in the helper's language.

use super::*;

// What a sync or `verify` found wrong ([`crate::problem::Problem`]), in the helper's
// language. Kept in a block of its own.

impl Lang {
    /// A problem of a sync or `verify` report, with what to do where the helper can do
    /// something. English is the problem's own text.
    pub fn problem(self, p: &crate::problem::Problem) -> String {
        use crate::problem::{Problem as P, join};
        if self == Lang::En {
            return p.to_string();
        }
        // A photo or the household's signature image: the hash does not say which.
        let img = |sha: &str| format!("图片 {}…", sha.get(..12).unwrap_or(sha));
        match p {
            P::ImageNotOnDevice { sha256 } => {
                format!(
                    "{}不在本机，无法上传：请作废此次走访后重新记录",
                    img(sha256)
                )
            }
            P::ImageUnreadable { sha256, detail } => {
                format!("{}读取失败（{detail}），下次同步再试", img(sha256))
            }
            P::ImageDamaged { sha256 } => format!(
                "{}在本机已损坏（与签名时不符），无法上传：请恢复原文件，或作废此次走访后重新记录",
                img(sha256)
            ),
            P::ImageRefused {
                sha256,
                reason,
                records,
            } => format!(
                "{}被服务器拒收：{reason}；记录 {} 仍待传照片，下次同步再试",
                img(sha256),
                join(records)
            ),
            P::UploadsDeferred { files, records, .. } => format!(
                "{files} 张图片未上传：本账号未完成的上传已达服务器上限（上传完成或过期后释放）；\
                 记录 {} 仍待传照片，下次同步再试",
                join(records)
            ),
            P::DownloadMismatch { sha256 } => {
                format!("从服务器下载的{}与其哈希不符，未保存", img(sha256))
            }
            P::DownloadNotImage { sha256, reason } => {
                format!("从服务器下载的{}无法读取（{reason}），未保存", img(sha256))
            }
            P::DownloadFailed { sha256, detail } => {
                format!("{}下载失败：{detail}", img(sha256))
            }
            P::RecordUnreadable { id, detail } => {
                format!("服务器发来的记录 {id} 无法读取（{detail}），已跳过")
            }
            P::RecordNewerFormat { id, .. } => {
                format!("服务器发来的记录 {id} 需新版本软件才能读取：已保留，升级后自动导入")
            }
            P::RecordNotStored { id, detail } => {
                format!("服务器发来的记录 {id} 无法保存到本机：{detail}")
            }
            P::RecordConflict { id } => {
                format!("记录 {id}：服务器上同一编号是另一条记录，本机记录未被覆盖")
            }
            P::SequenceTaken { id, device_id, seq } => format!(
                "服务器发来的记录 {id}：本机已有终端 {device_id} 的第 {seq} 号记录，与之不同，未导入"
            ),
            P::NotProcessed { id } => format!("记录 {id} 服务器未处理，下次同步重发"),
            P::SheetUnavailable { quarter, reason } => {
                format!("{quarter} 考勤表未能取得：{reason}")
            }
            P::SequenceGap { id, seq, expected } => {
                format!("记录 {id}：序号为 {seq}，应为 {expected}（记录链有缺口）")
            }
            P::ChainBroken { id } => format!("记录 {id}：与上一条记录的哈希链不相接"),
            P::ContentChanged { id } => format!("记录 {id}：内容与保存时的哈希不符（已被改动）"),
            P::BadSignature { id } => format!("记录 {id}：签名与本机密钥不符"),
            P::RecordImageDamaged { id, sha256 } => {
                format!("记录 {id}：{}缺失或已被改动", img(sha256))
            }
            P::NoVisitRow { id } => format!("记录 {id}：走访列表中没有这条走访"),
            P::Other { detail } => detail.clone(),
        }
    }
}

/// A visit list over its bound (`problems: at most 200 entries in a visit, got 201`,
/// from `bangfu_shared::visit`) in Chinese, naming the field by its label (QA s23d F5).
pub(super) fn list_bound_zh(m: &str) -> Option<String> {
    let (field, rest) = m.split_once(": at most ")?;
    let (max, got) = rest.split_once(" entries in a visit, got ")?;
    let label = match field {
        "policies" => "宣讲政策",
        "problems" => "发现问题",
        "help" => "帮",
        "support" => "扶",
        "deliveries" => "送",
        "family_changes" => "家庭变化",
        "photos" => "照片",
        _ => return None,
    };
    Some(format!("{label}：一次走访最多 {max} 项，现有 {got} 项"))
}
