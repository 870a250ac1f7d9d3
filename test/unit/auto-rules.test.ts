import { expect } from 'chai';
import { matchingRule, ruleMatches, type StudyTraits } from '../../src/analysis/auto-rules.js';
import { AutoRulesError, parseAutoRules } from '../../src/config.js';

const ct: StudyTraits = {
  modalities: ['CT'],
  bodyParts: ['CHEST'],
  callingAeTitles: ['SCANNER1'],
  studyDescription: 'CT Thorax w/o contrast',
};

describe('unit: auto-analyze rules', () => {
  it('parses a rule list and defaults the analysis type', () => {
    const rules = parseAutoRules('[{"modalities":["CT"]},{"bodyParts":["HEAD"],"analysisType":"comparison"}]');
    expect(rules).to.have.length(2);
    expect(rules[0]!.analysisType).to.equal('primary');
    expect(rules[1]!.analysisType).to.equal('comparison');
  });
  it('refuses missing, non-JSON, empty, unknown keys and bad regular expressions', () => {
    expect(() => parseAutoRules(undefined)).to.throw(AutoRulesError, /AUTO_ANALYZE_RULES/);
    expect(() => parseAutoRules('{')).to.throw(AutoRulesError, /not JSON/);
    expect(() => parseAutoRules('[]')).to.throw(AutoRulesError);
    expect(() => parseAutoRules('[{"colour":"red"}]')).to.throw(AutoRulesError);
    expect(() => parseAutoRules('[{"studyDescription":"("}]')).to.throw(AutoRulesError, /regular expression/);
  });
  it('criteria match case-insensitively; an absent criterion matches anything', () => {
    expect(ruleMatches({ analysisType: 'primary' }, ct)).to.equal(true);
    expect(ruleMatches({ modalities: ['ct', 'MR'], analysisType: 'primary' }, ct)).to.equal(true);
    expect(ruleMatches({ modalities: ['MR'], analysisType: 'primary' }, ct)).to.equal(false);
    expect(ruleMatches({ callingAeTitles: [' scanner1 '], analysisType: 'primary' }, ct)).to.equal(true);
  });
  it('study description is a case-insensitive regular expression; a missing description does not match one', () => {
    expect(ruleMatches({ studyDescription: 'thorax', analysisType: 'primary' }, ct)).to.equal(true);
    expect(ruleMatches({ studyDescription: '^head', analysisType: 'primary' }, ct)).to.equal(false);
    expect(ruleMatches({ studyDescription: 'thorax', analysisType: 'primary' }, { ...ct, studyDescription: null })).to.equal(false);
  });
  it('the first matching rule wins', () => {
    const rules = parseAutoRules('[{"modalities":["MR"]},{"bodyParts":["chest"],"analysisType":"comparison"},{"modalities":["CT"]}]');
    expect(matchingRule(rules, ct)).to.equal(rules[1]);
    expect(matchingRule(rules, { ...ct, modalities: ['US'], bodyParts: [] })).to.equal(undefined);
  });
});
