//! Choosing the regularisation: a path of strengths scored on held-out rows (one
//! validation set, or k folds), the best one chosen, and with folds the model refitted on
//! every row at the chosen strength, as scikit-learn's `LogisticRegressionCV(refit=True)`.

use super::checkpoint::Stage;
use super::path::check_path;
pub use super::strength::{Candidate, Strength};
use super::*;

/// Checks a list of strengths: at least one, each finite and > 0.
pub fn check_strengths(strengths: &[Strength]) -> Result<()> {
    let name = strengths.first().map_or("l2", |s| s.setting());
    if strengths.is_empty() {
        return Err(Error::setting(name, "(none)", "give at least one value"));
    }
    if let Some(bad) = strengths
        .iter()
        .find(|s| !(s.value().is_finite() && s.value() > 0.0))
    {
        return Err(Error::setting(
            name,
            bad.value(),
            "each value must be a finite number > 0",
        ));
    }
    Ok(())
}

/// How held-out rows score a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Score {
    /// Mean cross-entropy of the held-out rows (lower is better); scikit-learn's
    /// `neg_log_loss` with the sign turned.
    #[default]
    LogLoss,
    /// Fraction of held-out rows classified right (higher is better).
    Accuracy,
}

impl Score {
    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Score::LogLoss => "log-loss",
            Score::Accuracy => "accuracy",
        }
    }

    fn of(self, m: &Metrics) -> f64 {
        match self {
            Score::LogLoss => m.log_loss,
            Score::Accuracy => m.accuracy,
        }
    }

    /// Whether `a` is strictly better than `b`.
    fn better(self, a: f64, b: f64) -> bool {
        match self {
            Score::LogLoss => a < b,
            Score::Accuracy => a > b,
        }
    }
}

/// Which fold each row belongs to, for k-fold cross-validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folds {
    fold_of: Vec<u32>,
    count: usize,
}

impl Folds {
    /// Stratified folds: each class's rows shuffled (seeded) and dealt in turn to the
    /// folds, continuing from where the previous class stopped, so every fold holds each
    /// class in proportion and the folds' sizes differ by at most one. Fails when a class
    /// has fewer rows than there are folds, or when `count` < 2.
    pub fn stratified(labels: &[u32], n_classes: usize, count: usize, seed: u64) -> Result<Self> {
        if count < 2 {
            return Err(Error::setting(
                "cv",
                count,
                "cross-validation needs at least 2 folds",
            ));
        }
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
        for (row, &label) in labels.iter().enumerate() {
            if let Some(rows) = by_class.get_mut(label as usize) {
                rows.push(row);
            }
        }
        if let Some((class, rows)) = by_class
            .iter()
            .enumerate()
            .find(|(_, rows)| !rows.is_empty() && rows.len() < count)
        {
            return Err(Error::setting(
                "cv",
                count,
                format!(
                    "class {class} has only {} rows, fewer than the folds; use at most {} folds",
                    rows.len(),
                    rows.len()
                ),
            ));
        }
        let mut rng = SplitMix64::new(seed);
        let mut fold_of = vec![0u32; labels.len()];
        let mut next = 0usize;
        for rows in &mut by_class {
            rng.shuffle(rows);
            for &row in rows.iter() {
                fold_of[row] = next as u32;
                next = (next + 1) % count;
            }
        }
        Ok(Folds { fold_of, count })
    }

    /// Folds given row by row (0-based fold numbers, as another tool's split): every number
    /// from 0 to the largest must hold at least one row, and there must be at least 2.
    pub fn from_ids(fold_of: Vec<u32>) -> Result<Self> {
        let count = fold_of.iter().max().map_or(0, |&f| f as usize + 1);
        if count < 2 {
            return Err(Error::setting(
                "folds",
                count,
                "cross-validation needs at least 2 folds",
            ));
        }
        let mut sizes = vec![0usize; count];
        for &f in &fold_of {
            sizes[f as usize] += 1;
        }
        if let Some(empty) = sizes.iter().position(|&s| s == 0) {
            return Err(Error::setting(
                "folds",
                empty,
                format!(
                    "fold {empty} has no rows; number the folds 0 to {}",
                    count - 1
                ),
            ));
        }
        Ok(Folds { fold_of, count })
    }

    /// `count:hash` of the fold of every row, for a checkpoint's settings.
    fn describe(&self) -> String {
        let hash = checkpoint::hash_words(self.fold_of.iter().copied());
        format!("{}:{hash:016x}", self.count)
    }

    /// The number of folds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The number of rows the folds cover.
    pub fn n_rows(&self) -> usize {
        self.fold_of.len()
    }

    /// The fold of each row.
    pub fn fold_of(&self) -> &[u32] {
        &self.fold_of
    }

    /// (training rows, held-out rows) of fold `f`, each in row order.
    pub fn split(&self, f: usize) -> (Vec<usize>, Vec<usize>) {
        (0..self.fold_of.len()).partition(|&r| self.fold_of[r] as usize != f)
    }
}

/// The result of choosing a strength.
#[derive(Debug, Clone)]
pub struct Selection {
    /// How the held-out rows scored the models.
    pub score: Score,
    /// Each strength's results, in the order given.
    pub candidates: Vec<Candidate>,
    /// The chosen strength's index: the best mean score, the first on ties.
    pub best: usize,
    /// The model to keep: refitted on every row at the chosen strength (folds), or the
    /// chosen model trained on the training rows (a validation set).
    pub chosen: PathModel,
}

/// What to choose among and how: the strengths in order, the score of held-out rows, and
/// whether each fold's path is warm-started ([`Trainer::fit_path`]).
#[derive(Debug, Clone, Copy)]
pub struct Choice<'a> {
    /// The strengths to compare.
    pub strengths: &'a [Strength],
    /// How held-out rows score a model.
    pub score: Score,
    /// Train each path one λ after another from the strongest, warm-started.
    pub warm_start: bool,
}

/// Progress while choosing: which fold (`None` for the refit on every row) and the report
/// of strength `s`'s model.
#[derive(Debug, Clone, Copy)]
pub struct SelectionStep<'a> {
    /// The fold being trained, 0-based; `None` while refitting on every row.
    pub fold: Option<usize>,
    /// The strength's index.
    pub strength: usize,
    /// The model's iteration report.
    pub report: &'a EpochReport,
}

impl Choice<'_> {
    /// The choice and `held_out` (how rows are held out) as settings for a checkpoint.
    fn describe(&self, held_out: &str) -> String {
        let values: Vec<String> = self
            .strengths
            .iter()
            .map(|s| format!("{:?}", s.value()))
            .collect();
        let kind = self.strengths.first().map_or("l2", |s| s.setting());
        format!(
            "strengths={kind}:{} score={} warm_start={} {held_out}",
            values.join(","),
            self.score.name(),
            self.warm_start
        )
    }
}

fn best_of(score: Score, candidates: &[Candidate]) -> usize {
    let mut best = 0;
    for (i, c) in candidates.iter().enumerate() {
        if score.better(c.mean(), candidates[best].mean()) {
            best = i;
        }
    }
    best
}

impl Trainer {
    /// k-fold cross-validation of a path of strengths: for each fold, the path is trained
    /// on the other folds' rows ([`Trainer::fit_path`]) and each model is scored on the
    /// fold's rows; the strength with the best mean score is chosen and a model refitted
    /// at it on every row.
    pub fn cross_validate(
        &self,
        backend: Backend<'_>,
        data: &Dataset,
        folds: &Folds,
        choice: Choice<'_>,
        mut on_step: impl FnMut(SelectionStep<'_>) -> ControlFlow<()>,
    ) -> Result<Selection> {
        check_strengths(choice.strengths)?;
        if folds.n_rows() != data.n_rows() {
            return Err(Error::setting(
                "folds",
                folds.n_rows(),
                format!(
                    "the folds cover {} rows, the data has {}",
                    folds.n_rows(),
                    data.n_rows()
                ),
            ));
        }
        // Earlier folds' scores depend on where their models stopped, so a resumed
        // cross-validation keeps the iteration limit and tolerance too.
        let held_out = format!(
            "folds={} epochs={} tol={:?}",
            folds.describe(),
            self.settings.epochs,
            self.settings.tol
        );
        let journal = self.journal(data, &choice.describe(&held_out))?;
        // A resumed selection goes on from the fold (or the refit) its checkpoint was in.
        let (first, mut candidates) = match (self.resumed_path()?, &journal) {
            (Some(cp), Some(_)) => {
                if cp.stage > folds.count() || cp.earlier.len() != choice.strengths.len() {
                    return Err(self.checkpoint_error(
                        "is damaged (its stage or earlier results do not fit these folds)".into(),
                    ));
                }
                (cp.stage, cp.earlier.clone())
            }
            _ => (
                0,
                choice
                    .strengths
                    .iter()
                    .map(|&s| Candidate::new(s))
                    .collect(),
            ),
        };
        for f in first..folds.count() {
            let (train_rows, test_rows) = folds.split(f);
            let train = data.select_rows(&train_rows)?;
            let test = data.select_rows(&test_rows)?;
            let stage = journal.as_ref().map(|journal| Stage {
                journal,
                index: f,
                earlier: &candidates,
            });
            let (mut path, scored) =
                self.scored_path(backend, (&train, &test), choice, (f, stage), &mut on_step)?;
            for (c, one) in candidates.iter_mut().zip(scored) {
                c.scores.extend(one.scores);
                c.train_loss.extend(one.train_loss);
                c.iterations.extend(one.iterations);
                c.evaluations.extend(one.evaluations);
                c.statuses.extend(one.statuses);
            }
            if self.interrupted() {
                // No refit: the fold's model at the best strength so far, as reached.
                let best = best_of(choice.score, &candidates);
                let mut chosen = path.swap_remove(best);
                chosen.status = Status::Interrupted;
                return Ok(Selection {
                    score: choice.score,
                    candidates,
                    best,
                    chosen,
                });
            }
        }
        let best = best_of(choice.score, &candidates);
        let l2 = choice.strengths[best].l2(data.n_rows());
        let stage = journal.as_ref().map(|journal| Stage {
            journal,
            index: folds.count(),
            earlier: &candidates,
        });
        let mut refit = self.path_stage(backend, data, &[l2], false, stage, |s, report| {
            on_step(SelectionStep {
                fold: None,
                strength: best + s,
                report,
            })
        })?;
        Ok(Selection {
            score: choice.score,
            candidates,
            best,
            chosen: refit.remove(0),
        })
    }

    /// A path trained on `train` and scored on `validation`; the model with the best score
    /// is kept as it is (no refit).
    pub fn select_on_validation(
        &self,
        backend: Backend<'_>,
        train: &Dataset,
        validation: &Dataset,
        choice: Choice<'_>,
        mut on_step: impl FnMut(SelectionStep<'_>) -> ControlFlow<()>,
    ) -> Result<Selection> {
        check_strengths(choice.strengths)?;
        // The held-out rows decide the scores a checkpoint keeps, so they are part of it.
        let journal = match self.checkpoints.is_some() || self.resume.is_some() {
            true => {
                let held_out = data_fingerprint(validation)?.replace(' ', ":");
                self.journal(train, &choice.describe(&format!("validation={held_out}")))?
            }
            false => None,
        };
        let stage = journal.as_ref().map(|journal| Stage {
            journal,
            index: 0,
            earlier: &[],
        });
        let (mut path, candidates) = self.scored_path(
            backend,
            (train, validation),
            choice,
            (0, stage),
            &mut on_step,
        )?;
        let best = best_of(choice.score, &candidates);
        Ok(Selection {
            score: choice.score,
            candidates,
            best,
            chosen: path.swap_remove(best),
        })
    }

    /// The path of `choice` trained on `train` (reported as fold `fold`) and each of its
    /// models scored on `held_out`: the models and one single-fold candidate per strength.
    fn scored_path(
        &self,
        backend: Backend<'_>,
        (train, held_out): (&Dataset, &Dataset),
        choice: Choice<'_>,
        (fold, stage): (usize, Option<Stage<'_>>),
        on_step: &mut dyn FnMut(SelectionStep<'_>) -> ControlFlow<()>,
    ) -> Result<(Vec<PathModel>, Vec<Candidate>)> {
        let l2s: Vec<f64> = choice
            .strengths
            .iter()
            .map(|s| s.l2(train.n_rows()))
            .collect();
        check_path(&l2s)?;
        let path = self.path_stage(
            backend,
            train,
            &l2s,
            choice.warm_start,
            stage,
            |s, report| {
                on_step(SelectionStep {
                    fold: Some(fold),
                    strength: s,
                    report,
                })
            },
        )?;
        let standardized = standardized_like(&path, held_out)?;
        let mut evaluator = Evaluator::new(backend, standardized.as_ref().unwrap_or(held_out))?;
        let mut candidates = Vec::with_capacity(path.len());
        for (&strength, fitted) in choice.strengths.iter().zip(&path) {
            let metrics = metrics_of(&mut evaluator, &fitted.model)?;
            candidates.push(Candidate {
                strength,
                scores: vec![choice.score.of(&metrics)],
                train_loss: vec![fitted.loss],
                iterations: vec![fitted.iterations],
                evaluations: vec![fitted.evaluations],
                statuses: vec![fitted.status],
            });
        }
        Ok((path, candidates))
    }
}

/// Held-out rows standardized with the path's μ and σ when its models carry them (the
/// models of one path share them), so each model is scored as it was trained; `None`
/// when the rows are used as they are.
fn standardized_like(path: &[PathModel], rows: &Dataset) -> Result<Option<Dataset>> {
    path.first()
        .and_then(|p| p.model.standardizer())
        .map(|st| st.apply(rows))
        .transpose()
}

/// A model's metrics on the evaluator's rows.
fn metrics_of(evaluator: &mut Evaluator<'_, '_>, model: &Model) -> Result<Metrics> {
    evaluator.evaluate(&flatten(model.theta(), model.bias()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_folds_hold_every_class_in_proportion() {
        let labels: Vec<u32> = (0..103).map(|i| (i % 3) as u32).collect();
        let folds = Folds::stratified(&labels, 3, 5, 11).unwrap();
        assert_eq!(folds.count(), 5);
        let mut sizes = [0usize; 5];
        let mut per_class = [[0usize; 3]; 5];
        for (row, &f) in folds.fold_of().iter().enumerate() {
            sizes[f as usize] += 1;
            per_class[f as usize][labels[row] as usize] += 1;
        }
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        for counts in per_class {
            for c in counts {
                assert!((6..=7).contains(&c), "{per_class:?}");
            }
        }
        // Seeded: the same seed gives the same folds, another seed others.
        assert_eq!(folds, Folds::stratified(&labels, 3, 5, 11).unwrap());
        assert_ne!(folds, Folds::stratified(&labels, 3, 5, 12).unwrap());
        let (train, test) = folds.split(2);
        assert_eq!(train.len() + test.len(), labels.len());
        assert!(test.iter().all(|&r| folds.fold_of()[r] == 2));
    }

    #[test]
    fn folds_are_refused_when_they_cannot_work() {
        let labels = [0u32, 0, 0, 1, 1, 1, 2];
        let err = Folds::stratified(&labels, 3, 2, 0).unwrap_err();
        assert!(err.to_string().contains("class 2 has only 1 rows"), "{err}");
        assert!(Folds::stratified(&labels, 3, 1, 0).is_err());
        assert!(Folds::from_ids(vec![0, 0, 0]).is_err());
        let err = Folds::from_ids(vec![0, 2, 2, 0]).unwrap_err();
        assert!(err.to_string().contains("fold 1 has no rows"), "{err}");
        assert_eq!(Folds::from_ids(vec![1, 0, 1]).unwrap().count(), 2);
    }

    #[test]
    fn strengths_convert_and_space_as_documented() {
        assert_eq!(Strength::C(2.0).l2(100), 1.0 / 200.0);
        assert_eq!(Strength::L2(1e-3).l2(100), 1e-3);
        let path = Strength::log_spaced(1e-1, 1e-4, 4).unwrap();
        let values: Vec<f64> = path.iter().map(|s| s.value()).collect();
        for (v, want) in values.iter().zip([1e-1, 1e-2, 1e-3, 1e-4]) {
            assert!((v / want - 1.0).abs() < 1e-12, "{values:?}");
        }
        assert!(Strength::log_spaced(1e-1, 1e-4, 1).is_err());
        assert!(Strength::log_spaced(0.0, 1e-4, 3).is_err());
        assert!(check_strengths(&[]).is_err());
        assert!(check_strengths(&[Strength::C(1.0), Strength::C(-1.0)]).is_err());
        assert!(check_strengths(&[Strength::L2(0.0)]).is_err());
    }
}
